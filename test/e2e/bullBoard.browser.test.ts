import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { chromiumAvailable, launchChromium } from '../support/browser.js';
import type { ApiHarness } from '../support/harness.js';
import { createAccount } from '../support/factories.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';

const ADMIN_TOKEN = 'browser-admin-token-0123456789';
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

describe('Bull Board in a real browser', function () {
  this.timeout(120_000);
  let stack: Stack | undefined;
  let api: ApiHarness;
  let browser: Browser;

  before(async function () {
    if (!chromiumAvailable()) this.skip();
    stack = await startStack({ ADMIN_TOKEN });
    api = stack.api;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  it('an on-call engineer logs in, finds the failed run’s job, presses Retry, and the run completes', async () => {
    const alice = await createAccount(api.deps.db);
    const runId = await startRunOk(api.app, alice.key, { prompt: `flaky [[fail-once:400:browser-${Date.now()}]]`, model: 'openai/gpt-4o-mini' });
    await waitForRunStatus(api.deps, runId, ['failed']);

    const context = await browser.newContext({ httpCredentials: { username: 'oncall', password: ADMIN_TOKEN } });
    const page = await context.newPage();
    await page.goto(`${await api.url()}/admin/queues/queue/runs?status=failed`);
    await page.getByText(runId).first().waitFor({ timeout: 30_000 });
    expect(await page.content()).to.not.match(/ry_(ek|sk)_/);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'bull-board-failed-run.png'), fullPage: true });

    // The job card's retry action is an icon button (no text): find it by its icon.
    const retry = page
      .locator('button:has(svg[class*="lucide-rotate"]), button:has(svg[class*="lucide-refresh"]), button:has(svg[class*="lucide-redo"])')
      .first();
    if (!(await retry.isVisible({ timeout: 5_000 }).catch(() => false))) {
      const icons = await page.locator('button svg').evaluateAll((els) => els.map((e) => e.getAttribute('class')));
      throw new Error(`no retry button on the job card; icon buttons: ${icons.join(', ')}`);
    }
    await retry.click();
    const confirm = page.getByRole('button', { name: 'Confirm' });
    if (await confirm.isVisible({ timeout: 2_000 }).catch(() => false)) await confirm.click();

    const run = await waitForRunStatus(api.deps, runId, ['completed'], 30_000);
    expect(run.episode, 'the retry behaved as a replay').to.equal(1);
    expect(await api.deps.db.apiKey.count({ where: { runId } }), 'with a fresh run key').to.equal(2);
    await page.goto(`${await api.url()}/admin/queues/queue/runs?status=completed`);
    await page.getByText(runId).first().waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'bull-board-retried-run.png'), fullPage: true });
    await context.close();
  });
});
