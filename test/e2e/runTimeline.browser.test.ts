import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { chromiumAvailable, launchChromium } from '../support/browser.js';
import { createAccount } from '../support/factories.js';
import { waitFor } from '../support/harness.js';
import { startStack, type Stack } from '../support/stack.js';
import { startStoryRun } from '../support/timelineRun.js';
import { startToolServer, type ToolServer } from '../support/toolServer.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhookReceiver.js';

const ADMIN_TOKEN = 'timeline-browser-token-0123456789';
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

describe('the run timeline page in a real browser', function () {
  this.timeout(120_000);
  let stack: Stack | undefined;
  let tools: ToolServer;
  let hooks: WebhookReceiver;
  let browser: Browser;

  before(async function () {
    if (!chromiumAvailable()) this.skip();
    tools = await startToolServer();
    hooks = await startWebhookReceiver();
    stack = await startStack({ ADMIN_TOKEN, TOOL_URL_ALLOWLIST: `${tools.url},${hooks.url}`, TOOL_RETRY_BASE_MS: '20', WEBHOOK_POLL_MS: '50' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
    await tools?.close();
    await hooks?.close();
  });

  it('draws every attempt and step of a failed run, and its replay button replays it; without the admin token the page is refused', async () => {
    const { api } = stack!;
    const bob = await createAccount(api.deps.db);
    const runId = await startStoryRun(api.app, api.deps, bob.key, tools, hooks);
    const base = await api.url();

    const anonymous = await browser.newContext();
    // A browser without the admin credentials is asked for them (401 with a Basic challenge).
    const refused = await anonymous.request.get(`${base}/admin/runs/${runId}`);
    expect(refused.status(), 'no admin credentials: refused').to.equal(401);
    expect(refused.headers()['www-authenticate']).to.match(/^Basic/);
    expect(await refused.text()).not.to.include(runId);
    await anonymous.close();

    const context = await browser.newContext({ httpCredentials: { username: 'oncall', password: ADMIN_TOKEN } });
    const page = await context.newPage();
    const scriptErrors: string[] = [];
    page.on('pageerror', (err) => scriptErrors.push(err.message));
    page.on('response', (response) => {
      if (response.status() >= 400 && !response.url().endsWith('/favicon.ico')) scriptErrors.push(`${response.status()} ${response.url()}`);
    });
    await page.goto(`${base}/admin/runs/${runId}`);
    await page.locator('#run-status').waitFor();
    expect(await page.locator('#run-status').textContent()).to.equal('failed');
    const rows = await page.locator('tr.item').evaluateAll((trs) =>
      trs.map((tr) => ({
        kind: tr.getAttribute('data-kind'),
        outcome: tr.getAttribute('data-outcome'),
        label: tr.querySelector('td.label')?.textContent?.trim(),
        barWidth: tr.querySelector('.bar')?.getBoundingClientRect().width ?? 0,
      })),
    );
    const labels = rows.map((row) => row.label);
    expect(labels).to.include.members([
      'attempt 1 on ' + labels.find((l) => l?.startsWith('attempt 1 on '))!.slice(13),
      'execute_tool hold',
      'execute_tool flaky',
    ]);
    expect(rows.filter((row) => row.kind === 'attempt').map((row) => row.outcome)).to.deep.equal(['requires_action', 'failed']);
    expect(rows.filter((row) => row.kind === 'model_call')).to.have.length(2);
    expect(rows.filter((row) => row.kind === 'wait').map((row) => row.outcome)).to.deep.equal(['answered']);
    expect(rows.filter((row) => row.kind === 'webhook_delivery')).to.have.length(2);
    expect(
      rows.every((row) => row.barWidth > 0),
      'every row has its bar drawn',
    ).to.equal(true);
    expect(await page.locator('.error').first().textContent()).to.match(/provider_rejected/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'run-timeline-failed.png'), fullPage: true });

    await page.locator('#replay').click();
    await page.locator('#replay-result').filter({ hasText: 'Replayed' }).waitFor({ timeout: 10_000 });
    // The run goes again from the start, a new episode: it parks on its client tool as the first time.
    const replayed = await waitFor(
      async () => {
        const run = await api.deps.db.run.findUniqueOrThrow({ where: { id: runId } });
        return run.episode === 1 && run.status === 'requires_action' ? run : null;
      },
      { what: 'the replayed run to wait for its client tool' },
    );
    expect(replayed.attempt).to.equal(3);
    await page.waitForURL(`${base}/admin/runs/${runId}`);
    await page.locator('#run-status').waitFor();
    await page.screenshot({ path: path.join(ARTIFACTS, 'run-timeline-replayed.png'), fullPage: true });
    expect(scriptErrors).to.deep.equal([]);
    await context.close();
  });
});
