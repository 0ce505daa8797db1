import { expect } from 'chai';
import request from 'supertest';
import { comparableParts, readWithAiSdk } from '../support/aiSdkClient.js';
import { MCP_SECRET_BODY, OAUTH_CLIENT, startMcpServer, type TestMcpServer } from '../support/mcpServer.js';
import { postRun, startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';
import { setAccountSecret } from '../../shared/accounts/accountSecrets.js';

describe('agent runs: MCP servers as tool sources', function () {
  let mcp: TestMcpServer;
  let stack: Stack;

  before(async () => {
    let apiUrl = '';
    mcp = await startMcpServer(() => apiUrl);
    stack = await startStack({ TOOL_URL_ALLOWLIST: new URL(mcp.url).origin, RUN_MAX_ATTEMPTS: '2' });
    apiUrl = await stack.api.url();
  });
  after(async () => {
    await stack.close();
    await mcp.close();
  });

  const auth = () => ({ authorization: `Bearer ${stack.alice.key}` });

  it('lists the server’s tools as <name>__<tool>, calls them with tools/call and the run key, and gives results and errors to the model', async () => {
    const before = stack.fake.requests.length;
    const prompt = 'math [[call1:calc__add:{"a":2,"b":40}]] [[call1:calc__explode:{}]]';
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt, model: 'openai/gpt-4o', mcpServers: [{ name: 'calc', url: mcp.url }] });
    const run = await waitForRunStatus(stack.api.deps, runId, ['completed']);
    const offered = (stack.fake.requests[before]!.body.tools as { function: { name: string } }[]).map((t) => t.function.name);
    expect(offered).to.have.members(['calc__add', 'calc__run_status', 'calc__explode']);
    expect(mcp.toolCalls).to.deep.include({ name: 'add', args: { a: 2, b: 40 } });
    expect(
      mcp.requests.every((h) => /^Bearer ry_ek_/.test(String(h.authorization))),
      'the run key as the bearer token',
    ).to.equal(true);
    const { message } = await readWithAiSdk(`${await stack.api.url()}/api/chat/runs/${runId}/stream`, auth());
    const history = (await request(stack.api.app).get(`/api/chats/${run.chatId}/messages`).set(auth())).body.messages;
    const parts = history.find((m: { role: string }) => m.role === 'assistant').parts;
    expect(comparableParts(message!.parts)).to.deep.equal(comparableParts(parts));
    expect(parts.find((p: { type: string }) => p.type === 'tool-calc__add')).to.deep.include({ state: 'output-available', output: { sum: 42 } });
    expect(parts.find((p: { type: string }) => p.type === 'tool-calc__explode')).to.deep.include({ state: 'output-error', errorText: 'kaboom' });
  });

  it('lets an MCP tool call runyard back with the run key it received: it reads its own run', async () => {
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'call rs__run_status {}', mcpServers: [{ name: 'rs', url: mcp.url }] });
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
    const seen = mcp.toolCalls.filter((call) => call.name === 'run_status');
    expect(seen.at(-1)!.args).to.deep.equal({ runId, httpStatus: 200, status: 'running' });
  });

  it('sends an account secret to an MCP server that asks for one (auth), the run key then as x-runyard-run-key; never the secret anywhere else', async () => {
    await setAccountSecret(stack.api.deps.db, stack.alice.accountId, 'CALC_TOKEN', 'calc-s3cret-value', stack.api.deps.config.RUNYARD_SECRET);
    const seenBefore = mcp.requests.length;
    const runId = await startRunOk(stack.api.app, stack.alice.key, {
      prompt: 'math [[call1:calc__add:{"a":1,"b":2}]]',
      model: 'openai/gpt-4o',
      mcpServers: [{ name: 'calc', url: mcp.url, auth: { secret: 'CALC_TOKEN' } }],
    });
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
    const seen = mcp.requests.slice(seenBefore);
    expect(seen.length).to.be.greaterThan(0);
    for (const headers of seen) {
      expect(headers.authorization).to.equal('Bearer calc-s3cret-value');
      expect(String(headers['x-runyard-run-key'])).to.match(/^ry_ek_/);
    }
    const inHeader = await startRunOk(stack.api.app, stack.alice.key, {
      prompt: 'math [[call1:calc__add:{"a":3,"b":4}]]',
      model: 'openai/gpt-4o',
      mcpServers: [{ name: 'calc', url: mcp.url, auth: { secret: 'CALC_TOKEN', header: 'X-Api-Key' } }],
    });
    const seenAt = mcp.requests.length;
    await waitForRunStatus(stack.api.deps, inHeader, ['completed']);
    expect(mcp.requests.slice(seenAt - 1).some((h) => h['x-api-key'] === 'calc-s3cret-value')).to.equal(true);
    const run = await stack.api.deps.db.run.findUniqueOrThrow({ where: { id: runId } });
    const job = await stack.api.deps.runQueues.forRun(runId).getJob(runId);
    const timeline = await request(stack.api.app).get(`/api/chat/runs/${runId}`).set(auth());
    expect(JSON.stringify([run, job?.data, timeline.body], (_k, v) => (typeof v === 'bigint' ? String(v) : v))).not.to.include('calc-s3cret-value');
    const missing = await postRun(stack.api.app, stack.alice.key, { prompt: 'x', mcpServers: [{ name: 'calc', url: mcp.url, auth: { secret: 'NOPE' } }] });
    expect([missing.status, missing.body.error]).to.deep.equal([400, 'secret_not_found']);
  });

  it('gets an OAuth2 client-credentials token for an MCP server, caches it across runs, renews it once on a 401 (SPEC section 21)', async () => {
    await setAccountSecret(stack.api.deps.db, stack.alice.accountId, 'OAUTH_SECRET', OAUTH_CLIENT.clientSecret, stack.api.deps.config.RUNYARD_SECRET);
    const server = {
      name: 'calc',
      url: `${mcp.origin}/oauth-mcp`,
      auth: { oauth2: { tokenUrl: `${mcp.origin}/oauth/token`, clientId: OAUTH_CLIENT.clientId, clientSecret: 'OAUTH_SECRET', scope: 'tools' } },
    };
    const run = async (a: number) => {
      const seenAt = mcp.requests.length;
      const runId = await startRunOk(stack.api.app, stack.alice.key, {
        prompt: `math [[call1:calc__add:{"a":${a},"b":1}]]`,
        model: 'openai/gpt-4o',
        mcpServers: [server],
      });
      await waitForRunStatus(stack.api.deps, runId, ['completed']);
      expect(mcp.toolCalls).to.deep.include({ name: 'add', args: { a, b: 1 } });
      return mcp.requests.slice(seenAt);
    };
    const first = await run(100);
    expect(mcp.oauth.tokenRequests).to.have.length(1);
    expect(new URLSearchParams(mcp.oauth.tokenRequests[0]!.body).get('scope')).to.equal('tools');
    expect(first.every((h) => h.authorization === 'Bearer oauth-token-1' && /^ry_ek_/.test(String(h['x-runyard-run-key'])))).to.equal(true);
    await run(101);
    expect(mcp.oauth.tokenRequests, 'the token is cached until it expires').to.have.length(1);
    mcp.oauth.revoke();
    const renewed = await run(102);
    expect(mcp.oauth.tokenRequests, 'one renewal after the 401').to.have.length(2);
    expect(renewed.map((h) => h.authorization)).to.include.members(['Bearer oauth-token-1', 'Bearer oauth-token-2']);

    const offList = await postRun(stack.api.app, stack.alice.key, {
      prompt: 'x',
      mcpServers: [{ ...server, auth: { oauth2: { ...server.auth.oauth2, tokenUrl: 'https://elsewhere.example/token' } } }],
    });
    expect([offList.status, offList.body.error], 'the token url is held to the allowlist').to.deep.equal([400, 'tool_url_not_allowed']);
    const noSecret = await postRun(stack.api.app, stack.alice.key, {
      prompt: 'x',
      mcpServers: [{ ...server, auth: { oauth2: { ...server.auth.oauth2, clientSecret: 'MISSING' } } }],
    });
    expect([noSecret.status, noSecret.body.error]).to.deep.equal([400, 'secret_not_found']);
  });

  it('fails the run with mcp_unavailable (retried first) when a server cannot be listed', async () => {
    const dead = 'http://127.0.0.1:1/mcp';
    const allowed = await startStack({ TOOL_URL_ALLOWLIST: 'http://127.0.0.1:1', RUN_MAX_ATTEMPTS: '2' });
    try {
      const runId = await startRunOk(allowed.api.app, allowed.alice.key, { prompt: 'hi', mcpServers: [{ name: 'gone', url: dead }] });
      const run = await waitForRunStatus(allowed.api.deps, runId, ['failed'], 20_000);
      expect(run.errorCode).to.equal('mcp_unavailable');
      expect(run.attempt, 'retryable: retried before failing').to.equal(2);
    } finally {
      await allowed.close();
    }
  });

  it('never follows an MCP server’s redirect (the run key stays under the allowed prefix) and never echoes its error body', async () => {
    const prefixOnly = await startStack({ TOOL_URL_ALLOWLIST: `${mcp.origin}/public/`, RUN_MAX_ATTEMPTS: '1' });
    try {
      for (const path of ['/public/redirect', '/public/broken']) {
        const runId = await startRunOk(prefixOnly.api.app, prefixOnly.alice.key, { prompt: 'hi', mcpServers: [{ name: 'm', url: `${mcp.origin}${path}` }] });
        const run = await waitForRunStatus(prefixOnly.api.deps, runId, ['failed'], 20_000);
        expect(run.errorCode, path).to.equal('mcp_unavailable');
        expect(run.errorMessage, path).to.match(path.endsWith('redirect') ? /answered 307, a redirect/ : /answered HTTP 500/);
        expect(run.errorMessage, path).not.to.include(MCP_SECRET_BODY);
        const seen = (
          await request(prefixOnly.api.app)
            .get(`/api/chat/runs/${runId}`)
            .set({ authorization: `Bearer ${prefixOnly.alice.key}` })
        ).body;
        expect(JSON.stringify(seen), path).not.to.include(MCP_SECRET_BODY);
      }
      expect(mcp.privateHits, 'requests that reached the redirect’s target').to.deep.equal([]);
    } finally {
      await prefixOnly.close();
    }
  });

  it('refuses at POST an MCP url off the allowlist, and duplicate server names', async () => {
    const off = await postRun(stack.api.app, stack.alice.key, { prompt: 'x', mcpServers: [{ name: 'evil', url: 'http://example.com/mcp' }] });
    expect(off.status).to.equal(400);
    expect(off.body.error).to.equal('tool_url_not_allowed');
    const twice = await postRun(stack.api.app, stack.alice.key, {
      prompt: 'x',
      mcpServers: [
        { name: 'a', url: mcp.url },
        { name: 'a', url: mcp.url },
      ],
    });
    expect(twice.body.error).to.equal('validation_failed');
    expect(twice.body.detail).to.match(/twice/);
  });
});
