import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import request from 'supertest';
import type { Browser } from 'playwright-core';
import { chromiumAvailable, launchChromium } from '../support/browser.js';
import { createAccount } from '../support/factories.js';
import { startApi, startWorker, type ApiHarness } from '../support/harness.js';
import { startRunOk } from '../support/runs.js';
import type { FleetMember } from '../../worker/fleet/fleetMember.js';

const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

/** A page on another origin that shows a run with the browser's own EventSource and a stream token. */
const PAGE = (streamUrl: string) => `<!doctype html><html><body><h1>run</h1><pre id="out"></pre><script>
const source = new EventSource(${JSON.stringify(streamUrl)});
let text = '';
source.onmessage = (event) => {
  if (event.data === '[DONE]') { document.body.dataset.done = 'yes'; return; }
  const chunk = JSON.parse(event.data);
  if (chunk.type === 'text-delta') { text += chunk.delta; document.getElementById('out').textContent = text; }
};
setInterval(() => { document.body.dataset.readyState = String(source.readyState); }, 50);
</script></body></html>`;

describe('a web page shows a run with a stream token (real browser)', function () {
  this.timeout(120_000);
  let api: ApiHarness;
  let worker: FleetMember;
  let browser: Browser;
  let site: Server;
  let siteOrigin = '';
  let pageHtml = '';

  before(async function () {
    if (!chromiumAvailable()) this.skip();
    site = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(pageHtml));
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    siteOrigin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    api = startApi({ STREAM_CORS_ORIGINS: siteOrigin });
    worker = await startWorker(api.prefix, { LOCAL_MODEL_DELAY_MS: '30' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await worker?.close(1_000);
    await api?.close();
    await new Promise<void>((resolve) => (site ? site.close(() => resolve()) : resolve()));
  });

  it('renders the run’s text from native EventSource with ?token=, ends CLOSED, and no request carries the account key', async () => {
    const alice = await createAccount(api.deps.db);
    const words = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
    const runId = await startRunOk(api.app, alice.key, { prompt: words });
    // The backend mints the token; the page only ever sees the token.
    const { token } = (await request(api.app).post(`/api/chat/runs/${runId}/stream-token`).set('authorization', `Bearer ${alice.key}`)).body;
    pageHtml = PAGE(`${await api.url()}/api/chat/runs/${runId}/stream?token=${token}`);
    const page = await browser.newPage();
    const seen: string[] = [];
    page.on('request', (req) => seen.push(`${req.url()} ${JSON.stringify(req.headers())}`));
    await page.goto(siteOrigin);
    await page.waitForSelector('body[data-done="yes"]', { timeout: 30_000 });
    await page.waitForSelector('body[data-ready-state="2"]', { timeout: 15_000 });
    expect(await page.textContent('#out')).to.equal(words);
    expect(seen.some((line) => line.includes('/stream?token=ry_st_'))).to.equal(true);
    expect(seen.join('\n')).to.not.include(alice.key);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'run-in-a-web-page.png') });
  });
});
