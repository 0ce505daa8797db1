import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import request from 'supertest';
import { chromiumAvailable, launchChromium } from '../support/browser.js';
import { createAccount } from '../support/factories.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';

const ADMIN_TOKEN = 'usage-page-token-0123456789';
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

describe('the admin usage page in a real browser (SPEC section 21)', function () {
  this.timeout(120_000);
  let stack: Stack | undefined;
  let browser: Browser;

  before(async function () {
    if (!chromiumAvailable()) this.skip();
    stack = await startStack({ ADMIN_TOKEN });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  it('draws spend per day by model as a chart, with the table of the same figures under it', async () => {
    const { api } = stack!;
    const carol = await createAccount(api.deps.db);
    for (const model of ['openai/gpt-4o-mini', 'anthropic/claude-haiku-4-5', 'openai/gpt-4o-mini'])
      await waitForRunStatus(api.deps, await startRunOk(api.app, carol.key, { prompt: `what does this cost on ${model}`, model }), ['completed']);
    const report = (await request(api.app).get('/api/usage/report?groupBy=model').set(carol.auth)).body.rows as { model: string; costMicros: number }[];
    const base = await api.url();

    const anonymous = await browser.newContext();
    expect((await anonymous.request.get(`${base}/admin/usage`)).status(), 'no admin credentials: refused').to.equal(401);
    await anonymous.close();

    const context = await browser.newContext({ httpCredentials: { username: 'oncall', password: ADMIN_TOKEN } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(err.message));
    page.on('response', (response) => {
      if (response.status() >= 400 && !response.url().endsWith('/favicon.ico')) problems.push(`${response.status()} ${response.url()}`);
    });
    await page.goto(`${base}/admin/usage?account=${carol.accountId}`);
    const canvas = page.locator('#chart canvas').first();
    await canvas.waitFor();
    const box = await canvas.boundingBox();
    expect(box!.width).to.be.greaterThan(100);
    expect(await page.locator('#chart .u-legend .u-series').allTextContents()).to.satisfy((labels: string[]) =>
      ['openai/gpt-4o-mini', 'anthropic/claude-haiku-4-5'].every((model) => labels.some((label) => label.includes(model))),
    );
    const rows = await page
      .locator('tr.usage-row')
      .evaluateAll((trs) => trs.map((tr) => ({ model: tr.children[1]!.textContent, micros: Number(tr.lastElementChild!.getAttribute('data-micros')) })));
    const byModel = new Map<string, number>();
    for (const row of rows) byModel.set(row.model!, (byModel.get(row.model!) ?? 0) + row.micros);
    expect(Object.fromEntries(byModel)).to.deep.equal(Object.fromEntries(report.map((row) => [row.model, row.costMicros])));
    expect(Number(await page.locator('#usage-total').getAttribute('data-micros'))).to.equal(report.reduce((sum, row) => sum + row.costMicros, 0));
    expect(problems).to.deep.equal([]);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'usage-page.png'), fullPage: true });
  });
});
