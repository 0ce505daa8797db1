import { expect } from 'chai';
import request from 'supertest';
import type { RecordedRequest } from '../support/fakeProviders.js';
import { createAccount } from '../support/factories.js';
import { waitFor } from '../support/harness.js';
import { startRunOk, waitForRunStatus } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';
import { startToolServer, type ToolServer } from '../support/toolServer.js';

/**
 * Compaction (SPEC section 13), against the fake OpenAI and Anthropic servers, which report input
 * tokens that grow with the request (a token per whitespace-separated word of its messages).
 * A window of 150 tokens and the default 70% threshold: a first turn of ~40 tokens stays under it,
 * the second turn's call (~120 tokens, the whole chat) reaches it, so the third run compacts first.
 */
const words = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i}`).join(' ');
// As the fake reports it (Anthropic's input also counts the 3 cache-read tokens the fake reports).
const inputTokensOf = (r: RecordedRequest) => JSON.stringify(r.body.messages).split(/\s+/).length + (r.provider === 'anthropic' ? 3 : 0);
const isCompaction = (r: RecordedRequest) => JSON.stringify(r.body).includes('You compact conversations');
const textOf = (r: RecordedRequest) => JSON.stringify(r.body);

for (const model of ['openai/gpt-4o-mini', 'anthropic/claude-haiku-4-5']) {
  describe(`compaction keeps a long chat going with its run's identity (${model})`, function () {
    this.timeout(90_000);
    let stack: Stack;
    let tools: ToolServer;
    const runReads: { status: number; runId: string | undefined }[] = [];
    before(async () => {
      tools = await startToolServer();
      stack = await startStack({ MODEL_CONTEXT_TOKENS: `${model.split('/')[0]}/*=150`, TOOL_URL_ALLOWLIST: tools.url });
      // The tool reads its own run back with the run key it was called with.
      tools.behave('lookup', async (call) => {
        const auth = call.headers.authorization ?? '';
        const res = await request(stack.api.app).get(`/api/chat/runs/${call.body.runId}`).set('authorization', auth);
        runReads.push({ status: res.status, runId: res.body.runId });
        return { body: { output: { found: 'the answer is 42' } } };
      });
    });
    after(async () => {
      await stack.close();
      await tools.close();
    });

    const lookup = () => ({ name: 'lookup', url: tools.toolUrl('lookup'), inputSchema: { type: 'object' } });

    it('compacts once before the next model call, later calls carry the summary, history keeps everything, usage and key are the run’s', async () => {
      const bob = await createAccount(stack.api.deps.db);
      const send = async (chatId: string, body: Record<string, unknown>) => {
        const res = await request(stack.api.app).post(`/api/chats/${chatId}/messages`).set(bob.auth).send(body);
        expect(res.status, JSON.stringify(res.body)).to.equal(202);
        return (await waitForRunStatus(stack.api.deps, res.body.runId as string, ['completed', 'failed'])) as { id: string; status: string; usage: unknown };
      };
      const first = await waitForRunStatus(stack.api.deps, await startRunOk(stack.api.app, bob.key, { prompt: words('zebra', 40), model }), ['completed']);
      const chatId = first.chatId;
      const second = await send(chatId, { prompt: words('yak', 40) });
      expect(second.status).to.equal('completed');
      expect(await stack.api.deps.db.chatCompaction.count({ where: { chatId } }), 'the second turn is under the threshold when it starts').to.equal(0);
      const before = stack.fake.requests.length;

      const third = await send(chatId, { prompt: `[[call1:lookup:{}]] ${words('xenops', 5)}`, tools: [lookup()] });
      expect(third.status, (third as { errorMessage?: string }).errorMessage ?? '').to.equal('completed');
      const compactions = await stack.api.deps.db.chatCompaction.findMany({ where: { chatId } });
      expect(compactions).to.have.length(1);
      expect(compactions[0]!.runId).to.equal(third.id);

      const thirdRequests = stack.fake.requests.slice(before);
      expect(thirdRequests.map(isCompaction), 'one compaction call, then the step and the answer').to.deep.equal([true, false, false]);
      const [compactionCall, ...later] = thirdRequests;
      expect(textOf(compactionCall!)).to.include('zebra0').and.include('yak0');
      expect(compactionCall!.body.tools, 'the compaction offers no tools').to.equal(undefined);
      for (const call of later) {
        expect(textOf(call)).to.include('Summary of the earlier conversation');
        const system = [call.body.system, ((call.body.messages ?? []) as { role: string }[]).filter((m) => m.role === 'system')];
        expect(JSON.stringify(system), 'a model-written summary never gets the system role').not.to.include('Summary of the earlier');
        expect(textOf(call), 'the compacted turns are not sent again').not.to.include('zebra0').and.not.include('yak0');
        expect(textOf(call)).to.include('xenops0');
      }
      // The tool called after the compaction had a run key that reads its own run.
      expect(runReads).to.deep.equal([{ status: 200, runId: third.id }]);

      // The run's usage is every call's, the compaction's included; the account was charged the same.
      const usage = third.usage as { inputTokens: number; outputTokens: number };
      expect(usage.inputTokens).to.equal(thirdRequests.reduce((sum, r) => sum + inputTokensOf(r), 0));
      const account = (await request(stack.api.app).get('/api/usage').set(bob.auth)).body;
      const runs = await stack.api.deps.db.run.findMany({ where: { chatId } });
      expect(account.consumed.tokens).to.equal(
        runs.reduce((sum, run) => sum + (run.usage as { inputTokens: number }).inputTokens + (run.usage as { outputTokens: number }).outputTokens, 0),
      );

      // History still has every message; the third answer shows the compaction.
      const history = (await request(stack.api.app).get(`/api/chats/${chatId}/messages`).set(bob.auth)).body.messages as {
        id: string;
        role: string;
        parts: { type: string; data?: Record<string, unknown> }[];
      }[];
      expect(history.map((m) => m.role)).to.deep.equal(['user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
      const part = history[5]!.parts.find((p) => p.type === 'data-compaction');
      expect(part?.data).to.deep.include({ throughMessageId: history[3]!.id, summary: compactions[0]!.summary });
      expect(part?.data?.inputTokensBefore).to.be.at.least(105);

      // A later run of the chat starts from the summary too, and does not compact again.
      const fourthFrom = stack.fake.requests.length;
      const fourth = await send(chatId, { prompt: 'and now?' });
      expect(fourth.status).to.equal('completed');
      const fourthRequests = stack.fake.requests.slice(fourthFrom);
      expect(fourthRequests.map(isCompaction)).to.deep.equal([false]);
      expect(textOf(fourthRequests[0]!)).to.include('Summary of the earlier conversation').and.include('xenops0').and.not.include('zebra0');
      expect(await stack.api.deps.db.chatCompaction.count({ where: { chatId } })).to.equal(1);
    });

    it('fails a run whose own message cannot fit the window with context_length_exceeded, before any provider call', async () => {
      const bob = await createAccount(stack.api.deps.db);
      const before = stack.fake.requests.length;
      const runId = await startRunOk(stack.api.app, bob.key, { prompt: words('huge', 200), model });
      const run = await waitForRunStatus(stack.api.deps, runId, ['failed', 'completed']);
      expect(run).to.include({ status: 'failed', errorCode: 'context_length_exceeded', errorRetryable: false, attempt: 1 });
      await waitFor(async () => (await stack.api.deps.db.cleanupRecord.count({ where: { runId } })) === 1, { what: 'the cleanup' });
      expect(stack.fake.requests.length, 'no provider call').to.equal(before);
    });
  });
}
