import { expect } from 'chai';
import { textOfParts } from '../../shared/stream/messageParts.js';
import { startWorker } from '../support/harness.js';
import { startRunOk } from '../support/runs.js';
import { startStack, type Stack } from '../support/stack.js';
import type { FleetMember } from '../../worker/fleet/fleetMember.js';
import { expectEveryRunSettled } from './support.js';

/**
 * Misbehaving model providers, many runs at once on two workers (test/integration/worker.test.ts
 * has each fault alone, with its details): every run ends as the contract says — retried and
 * completed after 429 (honouring retry-after), 500, a cut stream and a hung stream; failed at once
 * on 400; failed after its attempts on a provider that stays down — and nothing is left behind.
 * A 429's pause of its model for the fleet hands other runs of that model back meanwhile.
 */
describe('fault: model providers failing under load', function () {
  this.timeout(240_000);
  let stack: Stack;
  let second: FleetMember;

  before(async () => {
    stack = await startStack({ PROVIDER_IDLE_TIMEOUT_MS: '4000', RUN_MAX_ATTEMPTS: '3', RUN_RETRY_BASE_MS: '100', ACCOUNT_MAX_ACTIVE_RUNS: '1000' });
    second = await startWorker(stack.api.prefix, stack.env);
  });
  after(async () => {
    await second.close(1_000);
    await stack.close();
  });

  it('every run is retried and completed, or failed with the right error, and cleaned up', async () => {
    const tag = Date.now();
    const cases = [
      { fault: 'fail-once:429', expect: { status: 'completed', attempt: 2, firstError: ['provider_rate_limited'] } },
      { fault: 'fail-once:500', expect: { status: 'completed', attempt: 2, firstError: ['provider_unavailable'] } },
      { fault: 'cut-once', expect: { status: 'completed', attempt: 2, firstError: ['provider_connection_failed', 'provider_stream_incomplete'] } },
      { fault: 'hang-once', expect: { status: 'completed', attempt: 2, firstError: ['provider_timeout'] } },
      { fault: 'fail:400', expect: { status: 'failed', attempt: 1, errorCode: 'provider_rejected' } },
      { fault: 'fail:500', expect: { status: 'failed', attempt: 3, errorCode: 'provider_unavailable' } },
      { fault: null, expect: { status: 'completed', attempt: 1 } },
    ] as const;
    const models = ['openai/gpt-4o', 'anthropic/claude-haiku-4-5'];
    const started = await Promise.all(
      Array.from({ length: 42 }, async (_, i) => {
        const c = cases[i % cases.length]!;
        // A -once fault needs a tag of its own per run: the fake fails the first request carrying it.
        const directive = c.fault === null ? '' : c.fault.includes('-once') ? `[[${c.fault}:${tag}-${i}]]` : `[[${c.fault}]]`;
        const prompt = `question number ${i} ${directive}`.trim();
        return { i, c, runId: await startRunOk(stack.api.app, stack.alice.key, { prompt, model: models[i % 2] }) };
      }),
    );
    const runIds = started.map((s) => s.runId);
    await expectEveryRunSettled(stack.api.deps, runIds, 120_000);

    const db = stack.api.deps.db;
    for (const { i, c, runId } of started) {
      const run = await db.run.findUniqueOrThrow({ where: { id: runId }, include: { attempts: { orderBy: { attempt: 'asc' } }, messages: true } });
      const label = `run ${i} (${c.fault ?? 'no fault'})`;
      expect(run.status, label).to.equal(c.expect.status);
      // A 429 pauses its model for the whole fleet (SPEC section 15): a run of that model meanwhile is
      // handed back until the pause ends — an attempt of its own, not a try that failed.
      const tries = run.attempts.filter((attempt) => attempt.errorCode !== 'waiting_for_capacity');
      expect(tries.length, `${label}: tries`).to.equal(c.expect.attempt);
      expect(run.attempt - tries.length, `${label}: attempts that waited for the model`).to.equal(run.attempts.length - tries.length);
      if ('firstError' in c.expect) expect(c.expect.firstError, label).to.include(tries[0]!.errorCode);
      if ('errorCode' in c.expect) expect(run.errorCode, label).to.equal(c.expect.errorCode);
      if (c.fault === 'fail-once:429') {
        const [first, second] = tries;
        expect(second!.startedAt.getTime() - first!.finishedAt!.getTime(), `${label}: waited for retry-after: 1`).to.be.at.least(900);
      }
      if (c.expect.status === 'completed') {
        const answer = run.messages.find((m) => m.role === 'assistant')!;
        expect(textOfParts(answer.parts as { type: string }[]), label).to.equal(`Echo: question number ${i}`);
      }
    }
  });
});
