import { escapeHtml as escape } from '../http/html.js';
import type { DayModelRow } from '../../shared/accounts/usageReports.js';

/**
 * The admin usage page (/admin/usage, SPEC section 21): spend per day by model, drawn as a chart
 * (uPlot, served from the same origin: the api's CSP allows no inline script) with the table of the
 * same rows under it — the figures of GET /api/admin/usage/report, per day and model.
 */

const usd = (micros: number) => (micros / 1_000_000).toFixed(micros > 0 && micros < 10_000 ? 6 : 2);

/** What the chart draws, for the page's script: days, models, and each model's spend (USD) per day. */
export type UsageChartData = { days: string[]; models: string[]; usd: number[][] };

/** Every UTC day of the period (a period of more than 400 days: the days with calls). */
function daysOf(rows: DayModelRow[], from: string, to: string): string[] {
  const first = Date.parse(from.slice(0, 10));
  const last = Date.parse(new Date(Date.parse(to) - 1).toISOString().slice(0, 10));
  if ((last - first) / 86_400_000 > 400) return [...new Set(rows.map((row) => row.day))].sort();
  const days: string[] = [];
  for (let day = first; day <= last; day += 86_400_000) days.push(new Date(day).toISOString().slice(0, 10));
  return days;
}

export function chartDataOf(rows: DayModelRow[], from: string, to: string): UsageChartData {
  const days = daysOf(rows, from, to);
  const models = [...new Set(rows.map((row) => row.model))].sort();
  const cost = new Map(rows.map((row) => [`${row.day}|${row.model}`, row.costMicros]));
  return { days, models, usd: models.map((model) => days.map((day) => (cost.get(`${day}|${model}`) ?? 0) / 1_000_000)) };
}

export function renderUsagePage(view: { rows: DayModelRow[]; from: string; to: string; account: string | null }): string {
  const data = chartDataOf(view.rows, view.from, view.to);
  // JSON in a data block: `<` escaped so no text of a model name can close the element.
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  const total = view.rows.reduce((sum, row) => sum + row.costMicros, 0);
  const rows = view.rows
    .map(
      (
        row,
      ) => `<tr class="usage-row"><td>${escape(row.day)}</td><td>${escape(row.model)}</td><td class="n">${row.inputTokens}</td><td class="n">${row.cachedInputTokens}</td>
<td class="n">${row.outputTokens}</td><td class="n">${row.reasoningTokens}</td><td class="n" data-micros="${row.costMicros}">${usd(row.costMicros)}</td></tr>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>usage · runyard</title>
<link rel="stylesheet" href="/admin/assets/uplot.css">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #111827; }
  h1 { font-size: 18px; margin: 0 0 8px; }
  form { margin-bottom: 12px; color: #4b5563; }
  input, button { font: inherit; }
  table { border-collapse: collapse; margin-top: 16px; min-width: 60%; }
  th, td { border-bottom: 1px solid #e5e7eb; padding: 4px 8px; text-align: left; }
  td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
  #chart { min-height: 320px; }
  .empty { color: #6b7280; }
</style>
</head>
<body>
<h1>Spend per day, by model${view.account ? ` — account <code>${escape(view.account)}</code>` : ''}</h1>
<form method="get" action="/admin/usage">
  from <input type="date" name="from" value="${escape(view.from.slice(0, 10))}">
  to <input type="date" name="to" value="${escape(new Date(Date.parse(view.to) - 1).toISOString().slice(0, 10))}">
  account <input name="account" value="${escape(view.account ?? '')}" placeholder="all accounts">
  <button>Show</button> · <a href="/api/admin/usage/report?groupBy=day&amp;from=${encodeURIComponent(view.from)}&amp;to=${encodeURIComponent(view.to)}">JSON</a>
</form>
<div id="chart">${view.rows.length ? '' : '<p class="empty">No model calls in this period.</p>'}</div>
<script type="application/json" id="usage-data">${json}</script>
<table id="usage-table">
<thead><tr><th>day (UTC)</th><th>model</th><th class="n">input</th><th class="n">cached input</th><th class="n">output</th><th class="n">reasoning</th><th class="n">cost (USD)</th></tr></thead>
<tbody>
${rows}
</tbody>
<tfoot><tr><th colspan="6">total</th><th class="n" id="usage-total" data-micros="${total}">${usd(total)}</th></tr></tfoot>
</table>
<script src="/admin/assets/uplot.js"></script>
<script src="/admin/assets/usage.js"></script>
</body>
</html>`;
}

/** The page's script: one line per model, the day on the x axis, USD on the y axis. */
export const USAGE_SCRIPT = `'use strict';
const data = JSON.parse(document.getElementById('usage-data').textContent);
const chart = document.getElementById('chart');
if (data.days.length > 0) {
  const palette = ['#2563eb', '#7c3aed', '#db2777', '#059669', '#d97706', '#0891b2', '#4b5563', '#dc2626'];
  const xs = data.days.map((day) => Date.parse(day + 'T00:00:00Z') / 1000);
  const series = [{}].concat(
    data.models.map((model, i) => ({
      label: model,
      stroke: palette[i % palette.length],
      width: 2,
      points: { show: true, size: 7 },
      value: (_u, v) => (v == null ? '' : '$' + v.toFixed(4)),
    })),
  );
  new uPlot(
    {
      width: Math.max(480, Math.min(1100, chart.clientWidth || 900)),
      height: 320,
      series,
      axes: [
        { incrs: [86400, 7 * 86400, 30 * 86400], values: (_u, ticks) => ticks.map((t) => new Date(t * 1000).toISOString().slice(5, 10)) },
        { size: 90, values: (_u, ticks) => ticks.map((t) => '$' + t) },
      ],
      scales: { x: { time: true, range: (_u, min, max) => [min - 43200, max + 43200] } },
    },
    [xs].concat(data.usd),
    chart,
  );
}
`;
