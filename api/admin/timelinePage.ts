import { escapeHtml as escape } from '../http/html.js';
import type { RunTimeline, TimelineItem } from '../runs/runTimeline.js';

/**
 * The run timeline page (/admin/runs/{runId}): the timeline drawn as a waterfall, server-rendered —
 * a row per item, indented under its parent, its bar placed on the run's time axis, its outcome and
 * error beside it — and, for a run that ended, a replay button (TIMELINE_SCRIPT, served from the
 * same origin: the api's CSP allows no inline script).
 */

const COLORS: Record<string, string> = {
  run: '#4b5563',
  queued: '#9ca3af',
  attempt: '#2563eb',
  model_call: '#7c3aed',
  tool_call: '#0891b2',
  wait: '#d97706',
  compaction: '#db2777',
  webhook_delivery: '#059669',
  cleanup: '#6b7280',
};
const FAILED = new Set(['failed', 'error', 'input_error', 'interrupted', 'cancelled', 'denied']);

function depthOf(item: TimelineItem, byId: Map<string, TimelineItem>): number {
  let depth = 0;
  for (let parent = item.parentId; parent; parent = byId.get(parent)?.parentId ?? null) depth++;
  return depth;
}

const ms = (iso: string) => Date.parse(iso);
const duration = (item: TimelineItem, now: number) => {
  const took = (item.endedAt ? ms(item.endedAt) : now) - ms(item.startedAt);
  return took >= 1000 ? `${(took / 1000).toFixed(2)} s` : `${took} ms`;
};

export function renderTimelinePage(timeline: RunTimeline, now = Date.now()): string {
  const byId = new Map(timeline.items.map((item) => [item.id, item]));
  const start = Math.min(...timeline.items.map((item) => ms(item.startedAt)));
  // The axis runs to the last end (an item still going ends now).
  const end = Math.max(...timeline.items.map((item) => (item.endedAt ? ms(item.endedAt) : Math.max(now, ms(item.startedAt)))), start + 1);
  const total = end - start;
  const rows = timeline.items
    .map((item) => {
      const left = ((ms(item.startedAt) - start) / total) * 100;
      const right = (((item.endedAt ? ms(item.endedAt) : end) - start) / total) * 100;
      const width = Math.max(right - left, 0.4);
      const failed = FAILED.has(item.outcome) || item.error !== null;
      return `<tr class="item" data-kind="${item.kind}" data-outcome="${escape(item.outcome)}">
  <td class="label" style="padding-left:${depthOf(item, byId) * 18 + 6}px">${escape(item.name)}</td>
  <td class="axis"><div class="bar${failed ? ' failed' : ''}" style="left:${left.toFixed(3)}%;width:${width.toFixed(3)}%;background:${COLORS[item.kind] ?? '#888'}" title="${escape(item.startedAt)}"></div></td>
  <td class="took">${escape(duration(item, now))}</td>
  <td class="outcome${failed ? ' failed' : ''}">${escape(item.outcome)}${Number(item.details.tries) > 1 ? ` after ${Number(item.details.tries)} tries` : ''}${item.error ? `<div class="error">${escape(item.error)}</div>` : ''}</td>
</tr>`;
    })
    .join('\n');
  const replay = timeline.replayable
    ? `<button id="replay" data-run-id="${escape(timeline.runId)}">Replay this run</button> <span id="replay-result" role="status"></span>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>run ${escape(timeline.runId)} · runyard</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #111827; }
  h1 { font-size: 18px; margin: 0 0 4px; }
  .meta { color: #4b5563; margin-bottom: 12px; }
  .meta code { background: #f3f4f6; padding: 1px 4px; border-radius: 3px; }
  table { border-collapse: collapse; width: 100%; table-layout: fixed; }
  td { border-bottom: 1px solid #f3f4f6; padding: 4px 6px; vertical-align: top; }
  td.label { width: 30%; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  td.axis { position: relative; height: 18px; }
  td.took { width: 80px; text-align: right; color: #4b5563; }
  td.outcome { width: 22%; }
  .bar { position: absolute; top: 6px; height: 12px; border-radius: 2px; }
  .bar.failed { outline: 2px solid #dc2626; }
  .failed { color: #b91c1c; }
  .error { font-size: 12px; white-space: pre-wrap; word-break: break-word; }
  button { font: inherit; padding: 4px 12px; cursor: pointer; }
</style>
</head>
<body>
<h1>Run <code>${escape(timeline.runId)}</code>: <span id="run-status" class="${FAILED.has(timeline.status) ? 'failed' : ''}">${escape(timeline.status)}</span></h1>
<div class="meta">model <code>${escape(timeline.model)}</code> · chat <code>${escape(timeline.chatId)}</code> · account <code>${escape(timeline.accountId)}</code> ·
episode ${timeline.episode} · ${timeline.attempts} attempt(s)${timeline.traceId ? ` · trace <code id="trace-id">${escape(timeline.traceId)}</code>` : ''}
${timeline.error ? `<div class="failed">${escape(`${timeline.error.code}: ${timeline.error.message}`)}</div>` : ''}</div>
<p>${replay} <a href="/api/admin/runs/${escape(timeline.runId)}/timeline">JSON</a> · <a href="/admin/queues">Bull Board</a></p>
<table>
<tbody>
${rows}
</tbody>
</table>
<script src="/admin/assets/timeline.js"></script>
</body>
</html>`;
}

/** The page's script: the replay button posts to the admin API (same origin, JSON) and reloads the page. */
export const TIMELINE_SCRIPT = `'use strict';
const button = document.getElementById('replay');
if (button) {
  button.addEventListener('click', async () => {
    button.disabled = true;
    const result = document.getElementById('replay-result');
    const res = await fetch('/api/admin/runs/' + encodeURIComponent(button.dataset.runId) + '/replay', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      credentials: 'same-origin',
    });
    const body = await res.json().catch(() => ({}));
    if (res.ok) {
      result.textContent = 'Replayed: the run is ' + body.status + '.';
      setTimeout(() => location.reload(), 1000);
    } else {
      result.textContent = 'Refused: ' + (body.detail || res.status);
      button.disabled = false;
    }
  });
}
`;
