import { expect } from 'chai';
import request from 'supertest';
import { Webhook } from 'standardwebhooks';
import { accountToolSecrets } from '../../shared/accounts/toolSecrets.js';
import { comparableParts, readWithAiSdk } from '../support/aiSdkClient.js';
import { createAccount } from '../support/factories.js';
import { waitFor } from '../support/harness.js';
import { postRun, startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';
import { startToolServer, type ToolServer } from '../support/toolServer.js';

const objectSchema = (properties: Record<string, unknown> = {}, required: string[] = []) => ({ type: 'object', properties, required });

describe('agent runs: the tool loop', function () {
  let tools: ToolServer;
  let stack: Stack;
  let apiUrl: string;

  before(async () => {
    tools = await startToolServer();
    stack = await startStack({ TOOL_URL_ALLOWLIST: tools.url, TOOL_TIMEOUT_MS: '500', TOOL_RETRY_BASE_MS: '20', TOOL_MAX_OUTPUT_BYTES: '2048' });
    apiUrl = await stack.api.url();
  });
  after(async () => {
    await stack.close();
    await tools.close();
  });

  const tool = (name: string, schema = objectSchema({ q: { type: 'string' } }, ['q'])) => ({
    name,
    description: `the ${name} tool`,
    inputSchema: schema,
    url: tools.toolUrl(name),
  });
  const auth = () => ({ authorization: `Bearer ${stack.alice.key}` });
  const messagesOf = async (chatId: string) => (await request(stack.api.app).get(`/api/chats/${chatId}/messages`).set(auth())).body.messages;

  /** Reads the run's whole stream with the AI SDK and checks it builds the persisted assistant message. */
  async function expectStreamEqualsHistory(runId: string) {
    const { message, errors } = await readWithAiSdk(`${apiUrl}/api/chat/runs/${runId}/stream`, auth());
    expect(errors).to.deep.equal([]);
    const run = (await request(stack.api.app).get(`/api/chat/runs/${runId}`).set(auth())).body;
    const assistant = (await messagesOf(run.chatId)).filter((m: { role: string }) => m.role === 'assistant');
    expect(assistant).to.have.length(1);
    expect(comparableParts(message!.parts)).to.deep.equal(comparableParts(assistant[0].parts));
    return assistant[0].parts as { type: string; state?: string; output?: unknown; errorText?: string }[];
  }

  for (const model of ['openai/gpt-4o-mini', 'anthropic/claude-haiku-4-5']) {
    it(`runs a 3-step loop on ${model} with two parallel calls: each tool once, results in order, usage summed, stream == history`, async () => {
      const prompt = ['plan a trip', '[[call1:lookup:{"q":"paris"}]]', '[[call1:weather:{"q":"rome"}]]', '[[call2:lookup:{"q":"berlin"}]]'].join(' ');
      const before = stack.fake.requests.length;
      const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt, model, tools: [tool('lookup'), tool('weather')] });
      const run = await waitForRunStatus(stack.api.deps, runId, ['completed']);
      const inputs = tools.calls.filter((c) => c.body.runId === runId).map((c) => [c.tool, c.body.input]);
      expect(inputs.slice(0, 2)).to.have.deep.members([
        ['lookup', { q: 'paris' }],
        ['weather', { q: 'rome' }],
      ]);
      expect(inputs.slice(2)).to.deep.equal([['lookup', { q: 'berlin' }]]);
      expect(run.steps).to.equal(3);
      expect(run.finishReason).to.equal('stop');
      const sent = stack.fake.requests.slice(before);
      expect(sent).to.have.length(3);
      const parts = await expectStreamEqualsHistory(runId);
      expect(parts.map((p) => p.type)).to.deep.equal(['step-start', 'tool-lookup', 'tool-weather', 'step-start', 'tool-lookup', 'step-start', 'text']);
      expect(parts.filter((p) => p.type.startsWith('tool-')).map((p) => p.state)).to.deep.equal(['output-available', 'output-available', 'output-available']);
      // The model got the results in call order; its final answer quotes them.
      const text = parts.find((p) => p.type === 'text') as unknown as { text: string };
      expect(text.text).to.match(/results: .*paris.*rome.*berlin/);
      const usage = run.usage as { outputTokens: number; inputTokens: number };
      expect(usage.outputTokens).to.be.greaterThan(3);
      const [message] = await stack.api.deps.db.message.findMany({ where: { runId, role: 'assistant' } });
      expect(message!.outputTokens).to.equal(usage.outputTokens);
      // The run's key reached the tools, never the model.
      const calls = tools.calls.filter((c) => c.body.runId === runId);
      expect(calls.every((c) => /^Bearer ry_ek_/.test(String(c.headers.authorization)))).to.equal(true);
      expect(JSON.stringify(sent.map((r) => r.body))).not.to.match(/ry_ek_/);
    });
  }

  it('sends each call signed per Standard Webhooks: the signature verifies with the account secret and fails with another', async () => {
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'call lookup {"q":"signed"}', tools: [tool('lookup')] });
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
    const [call] = tools.calls.filter((c) => c.body.runId === runId);
    const secrets = await accountToolSecrets(stack.api.deps.db, stack.alice.accountId, stack.api.deps.config.RUNYARD_SECRET);
    const headers = call!.headers as Record<string, string>;
    expect(new Webhook(secrets.current).verify(call!.rawBody, headers)).to.deep.include({ runId, toolName: 'lookup', input: { q: 'signed' } });
    expect(headers['idempotency-key']).to.equal(headers['webhook-id']);
    expect(() => new Webhook(`whsec_${Buffer.from('another secret of 32 bytes long!').toString('base64')}`).verify(call!.rawBody, headers)).to.throw();
    expect(call!.body).to.have.keys('runId', 'chatId', 'toolCallId', 'toolName', 'input');
  });

  it('local/echo calls the tool named by "call <tool> <json>" and answers with its output', async () => {
    tools.behave('add', (call) => {
      const { a, b } = call.body.input as { a: number; b: number };
      return { body: { output: { sum: a + b } } };
    });
    const schema = objectSchema({ a: { type: 'number' }, b: { type: 'number' } }, ['a', 'b']);
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'call add {"a":2,"b":3}', tools: [tool('add', schema)] });
    const run = await waitForRunStatus(stack.api.deps, runId, ['completed']);
    expect(run.steps).to.equal(2);
    const parts = await expectStreamEqualsHistory(runId);
    expect(parts.find((p) => p.type === 'tool-add')).to.deep.include({ state: 'output-available', output: { sum: 5 } });
    expect(parts.find((p) => p.type === 'text')).to.deep.equal({ type: 'text', text: '{"sum":5}' });
  });

  it('local/echo takes one step per group of calls split by "then" lines, feeding each step the results of the one before', async () => {
    const prompt = ['call lookup {"q":"a"}', 'call weather {"q":"b"}', 'then', 'call lookup {"q":"c"}'].join('\n');
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt, tools: [tool('lookup'), tool('weather')] });
    const run = await waitForRunStatus(stack.api.deps, runId, ['completed']);
    expect(run.steps).to.equal(3);
    const parts = await expectStreamEqualsHistory(runId);
    expect(parts.map((p) => p.type)).to.deep.equal(['step-start', 'tool-lookup', 'tool-weather', 'step-start', 'tool-lookup', 'step-start', 'text']);
  });

  it('lets a tool call runyard back with the run key: its own run and chat 200, another run 404, after the run ended 401', async () => {
    const other = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'someone else' });
    const seen: Record<string, number> = {};
    let key = '';
    tools.behave('callback', async (call) => {
      key = String(call.headers.authorization);
      // Where runyard is, as the worker says (PUBLIC_BASE_URL): what scripts/toolServer.ts uses too.
      seen.toldUrl = call.headers['x-runyard-api-url'] === apiUrl ? 1 : 0;
      const get = (path: string) => fetch(`${call.headers['x-runyard-api-url']}${path}`, { headers: { authorization: key } }).then((r) => r.status);
      seen.ownRun = await get(`/api/chat/runs/${call.body.runId}`);
      seen.ownMessages = await get(`/api/chats/${call.body.chatId}/messages`);
      seen.otherRun = await get(`/api/chat/runs/${other}`);
      seen.startRun = (
        await fetch(`${apiUrl}/api/chat/runs`, { method: 'POST', headers: { authorization: key, 'content-type': 'application/json' }, body: '{"prompt":"x"}' })
      ).status;
      return { body: { output: seen } };
    });
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'call callback {}', tools: [tool('callback', objectSchema())] });
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
    expect(seen).to.deep.equal({ toldUrl: 1, ownRun: 200, ownMessages: 200, otherRun: 404, startRun: 403 });
    await waitFor(async () => (await fetch(`${apiUrl}/api/chat/runs/${runId}`, { headers: { authorization: key } })).status === 401, {
      what: 'the run key to stop working once the run ended',
      timeoutMs: 10_000,
    });
  });

  it('retries a tool that answers 500 with the same webhook-id, and turns a timeout, a 400 and an oversized output into error results', async () => {
    tools.behave('flaky', (_call, nth) => (nth === 1 ? { status: 500, body: { error: 'boom' } } : { body: { output: 'fine now' } }));
    tools.behave('slow', () => ({ delayMs: 2_000, body: { output: 'too late' } }));
    tools.behave('picky', () => ({ status: 400, body: { error: 'bad request' } }));
    tools.behave('huge', () => ({ body: { output: 'x'.repeat(10_000) } }));
    const prompt = ['call flaky {"q":"1"}', 'call slow {"q":"2"}', 'call picky {"q":"3"}', 'call huge {"q":"4"}'].join('\n');
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt, tools: ['flaky', 'slow', 'picky', 'huge'].map((n) => tool(n)) });
    const run = await waitForRunStatus(stack.api.deps, runId, ['completed'], 30_000);
    const mine = (name: string) => tools.callsOf(name).filter((c) => c.body.runId === runId);
    expect(mine('flaky')).to.have.length(2);
    expect(new Set(mine('flaky').map((c) => c.headers['webhook-id'])).size, 'one webhook-id across the retry').to.equal(1);
    expect(mine('slow').length, 'a timeout is retried up to TOOL_MAX_TRIES').to.equal(3);
    expect(mine('picky'), 'a 4xx is not retried').to.have.length(1);
    const parts = await expectStreamEqualsHistory(runId);
    const byTool = Object.fromEntries(parts.filter((p) => p.type.startsWith('tool-')).map((p) => [p.type, p]));
    expect(byTool['tool-flaky']).to.deep.include({ state: 'output-available', output: 'fine now' });
    expect(byTool['tool-slow']!.state).to.equal('output-error');
    expect(byTool['tool-slow']!.errorText).to.match(/did not answer within 500 ms/);
    expect(byTool['tool-picky']!.errorText).to.match(/answered 400/);
    expect(byTool['tool-huge']!.errorText).to.match(/larger than 2048 bytes/);
    expect(run.status).to.equal('completed');
  });

  it('does not execute a call whose input does not match the schema: the model gets an error result and the loop goes on', async () => {
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt: 'call lookup {"q": 42}', tools: [tool('lookup')] });
    const run = await waitForRunStatus(stack.api.deps, runId, ['completed']);
    expect(tools.calls.filter((c) => c.body.runId === runId)).to.deep.equal([]);
    const { chunks } = await readWithAiSdk(`${apiUrl}/api/chat/runs/${runId}/stream`, auth());
    expect(chunks.map((c) => c.type)).to.include('tool-input-error');
    const parts = await expectStreamEqualsHistory(runId);
    expect(parts[1]).to.deep.include({ type: 'tool-lookup', state: 'output-error' });
    expect(parts[1]!.errorText).to.match(/Invalid input for lookup/);
    expect(run.steps).to.equal(2);
  });

  it('checks a pattern with RE2: a backtracking pattern and a hostile input end as an input error at once, and a matching input runs', async () => {
    const schema = objectSchema({ q: { type: 'string', pattern: '^(a+)+$' } }, ['q']);
    const hostile = `call lookup {"q":"${'a'.repeat(5_000)}!"}`;
    const started = Date.now();
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt: `${hostile}\nthen\ncall lookup {"q":"aaaa"}`, tools: [tool('lookup', schema)] });
    const run = await waitForRunStatus(stack.api.deps, runId, ['completed']);
    // A backtracking engine takes 2^5000 steps on this input; RE2 is linear. The bound is wide for a loaded machine.
    expect(Date.now() - started, 'ms to complete').to.be.below(15_000);
    expect(tools.calls.filter((c) => c.body.runId === runId).map((c) => c.body.input)).to.deep.equal([{ q: 'aaaa' }]);
    const parts = await expectStreamEqualsHistory(runId);
    expect(parts.find((p) => p.type === 'tool-lookup')!.errorText).to.match(/must match pattern/);
    expect(run.steps).to.equal(3);
  });

  it('keeps text Postgres cannot store out of a run: a NUL in a tool input is an input error, a NUL in a tool output becomes U+FFFD', async () => {
    tools.behave('nul_out', () => ({ body: { output: { text: 'x\u0000y' } } }));
    const prompt = 'call lookup {"q":"a\\u0000b"}\nthen\ncall nul_out {"q":"z"}';
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt, tools: [tool('lookup'), tool('nul_out')] });
    const run = await waitForRunStatus(stack.api.deps, runId, ['completed', 'failed']);
    expect([run.status, run.attempt]).to.deep.equal(['completed', 1]);
    expect(tools.calls.filter((c) => c.body.runId === runId).map((c) => c.tool)).to.deep.equal(['nul_out']);
    const parts = await expectStreamEqualsHistory(runId);
    expect(parts.find((p) => p.type === 'tool-lookup')!.errorText).to.match(/contains a NUL character/);
    expect(parts.find((p) => p.type === 'tool-nul_out')!.output).to.deep.equal({ text: 'x\uFFFDy' });
  });

  it('ends a run that reaches maxSteps completed with finishReason max_steps', async () => {
    const prompt = 'loop [[call1:lookup:{"q":"a"}]] [[call2:lookup:{"q":"b"}]] [[call3:lookup:{"q":"c"}]]';
    const runId = await startRunOk(stack.api.app, stack.alice.key, { prompt, model: 'openai/gpt-4o', tools: [tool('lookup')], maxSteps: 2 });
    const run = await waitForRunStatus(stack.api.deps, runId, ['completed']);
    expect(run).to.include({ steps: 2, finishReason: 'max_steps' });
    expect(tools.calls.filter((c) => c.body.runId === runId).map((c) => c.body.input)).to.deep.equal([{ q: 'a' }, { q: 'b' }]);
    const view = (await request(stack.api.app).get(`/api/chat/runs/${runId}`).set(auth())).body;
    expect(view).to.include({ status: 'completed', steps: 2, finishReason: 'max_steps' });
  });

  it('continues a conversation whose earlier assistant message holds tool parts', async () => {
    const messages = [
      { role: 'user', parts: [{ type: 'text', text: 'find paris' }] },
      {
        role: 'assistant',
        parts: [
          { type: 'step-start' },
          { type: 'tool-lookup', toolCallId: 'call_earlier', state: 'output-available', input: { q: 'paris' }, output: { found: true } },
          { type: 'step-start' },
          { type: 'text', text: 'found it' },
        ],
      },
      { role: 'user', parts: [{ type: 'text', text: 'thanks' }] },
    ];
    const before = stack.fake.requests.length;
    const runId = await startRunOk(stack.api.app, stack.alice.key, { messages, model: 'openai/gpt-4o', tools: [tool('lookup')] });
    await waitForRunStatus(stack.api.deps, runId, ['completed']);
    const sent = stack.fake.requests.slice(before)[0]!.body.messages as { role: string; tool_call_id?: string }[];
    expect(sent.map((m) => m.role)).to.deep.equal(['user', 'assistant', 'tool', 'assistant', 'user']);
    expect(sent[2]!.tool_call_id).to.equal('call_earlier');
  });

  describe('refused at POST, before anything is created', () => {
    const cases: [string, Record<string, unknown>, number, string, RegExp][] = [
      ['a url off the allowlist', { tools: [{ name: 'x', inputSchema: { type: 'object' }, url: 'http://example.com/x' }] }, 400, 'tool_url_not_allowed', /"x"/],
      [
        'an invalid JSON Schema',
        { tools: [{ name: 'bad', inputSchema: { type: 'object', properties: { a: { type: 12 } } }, url: 'URL' }] },
        400,
        'invalid_tool_schema',
        /"bad"/,
      ],
      ['a non-object schema', { tools: [{ name: 'str', inputSchema: { type: 'string' }, url: 'URL' }] }, 400, 'invalid_tool_schema', /"str"/],
      ['a duplicate tool name', { tools: [tool_('d'), tool_('d')] }, 400, 'validation_failed', /twice/],
      ['a bad tool name', { tools: [{ ...tool_('d'), name: 'has space' }] }, 400, 'validation_failed', /name/],
      ['maxSteps over 100', { maxSteps: 101, tools: [tool_('d')] }, 400, 'validation_failed', /maxSteps/],
      ['more than 64 tools', { tools: Array.from({ length: 65 }, (_, i) => tool_(`t${i}`)) }, 400, 'validation_failed', /tools/],
      [
        'a 100,000-value enum',
        { tools: [schemaTool('big', { s: { enum: Array.from({ length: 100_000 }, (_, i) => `v${i}`) } })] },
        400,
        'invalid_tool_schema',
        /"big".*100000 items/,
      ],
      ['a schema nested 800 deep', { tools: [{ name: 'deep', inputSchema: nested(800), url: 'URL' }] }, 400, 'invalid_tool_schema', /"deep".*deeper than 64/],
      ['a backreference (not RE2)', { tools: [schemaTool('br', { s: { type: 'string', pattern: '(a)\\1' } })] }, 400, 'invalid_tool_schema', /"br".*RE2/],
      ['a lookahead (not RE2)', { tools: [schemaTool('la', { s: { type: 'string', pattern: '^(?=a)' } })] }, 400, 'invalid_tool_schema', /"la".*RE2/],
    ];
    function schemaTool(name: string, properties: Record<string, unknown>) {
      return { name, inputSchema: { type: 'object', properties }, url: 'URL' };
    }
    function nested(depth: number): Record<string, unknown> {
      let schema: Record<string, unknown> = { type: 'object' };
      for (let i = 0; i < depth; i++) schema = { type: 'object', properties: { a: schema } };
      return schema;
    }
    function tool_(name: string) {
      return { name, inputSchema: { type: 'object' }, url: 'URL' };
    }
    for (const [label, extra, status, code, detail] of cases) {
      it(`${label}: ${status} ${code}`, async () => {
        const body = JSON.parse(JSON.stringify({ prompt: 'hi', ...extra }).replaceAll('"URL"', JSON.stringify(tools.toolUrl('t'))));
        const account = await createAccount(stack.api.deps.db);
        const res = await postRun(stack.api.app, account.key, body);
        expect(res.status).to.equal(status);
        expect(res.body.error).to.equal(code);
        expect(res.body.detail).to.match(detail);
        expect(await stack.api.deps.db.run.count({ where: { accountId: account.accountId } })).to.equal(0);
      });
    }
  });
});
