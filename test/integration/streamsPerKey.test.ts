import { expect } from 'chai';
import request from 'supertest';
import { createAccount } from '../support/factories.js';
import { startApi, waitFor, type ApiHarness } from '../support/harness.js';
import { startRunOk } from '../support/runs.js';

/** Opens a stream and keeps it open until aborted; resolves with its status once the headers came. */
async function openStream(url: string, key: string) {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { authorization: `Bearer ${key}` }, signal: abort.signal });
  return { status: res.status, body: (res.status === 200 ? null : await res.json()) as { error?: string } | null, close: () => abort.abort() };
}

describe('STREAMS_PER_KEY: open streams per key, across api processes', function () {
  this.timeout(30_000);
  let api: ApiHarness;
  let other: ApiHarness;
  afterEach(async () => {
    await api?.close();
    await other?.close();
  });

  it('refuses a key’s stream past the limit with 429 too_many_streams, on any api process, and frees the place when a stream closes', async () => {
    api = startApi({ STREAMS_PER_KEY: '2' });
    other = startApi({ STREAMS_PER_KEY: '2', QUEUE_PREFIX: api.prefix });
    const alice = await createAccount(api.deps.db);
    const bob = await createAccount(api.deps.db);
    // No worker: the run stays queued and its stream stays open.
    const runId = await startRunOk(api.app, alice.key, { prompt: 'held open' });
    const path = `/api/chat/runs/${runId}/stream`;
    const first = await openStream(`${await api.url()}${path}`, alice.key);
    const second = await openStream(`${await other.url()}${path}`, alice.key);
    expect([first.status, second.status]).to.deep.equal([200, 200]);
    const third = await openStream(`${await api.url()}${path}`, alice.key);
    expect([third.status, third.body?.error]).to.deep.equal([429, 'too_many_streams']);
    const bobs = await request(api.app).get('/api/chat/runs').set('authorization', `Bearer ${bob.key}`);
    expect(bobs.status, 'another key is not affected').to.equal(200);
    first.close();
    let again: Awaited<ReturnType<typeof openStream>> | undefined;
    await waitFor(
      async () => {
        again?.close();
        again = await openStream(`${await other.url()}${path}`, alice.key);
        return again.status === 200;
      },
      { timeoutMs: 10_000, what: 'a place freed by the closed stream' },
    );
    again?.close();
    second.close();
  });
});
