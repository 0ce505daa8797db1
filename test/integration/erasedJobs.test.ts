import { expect } from 'chai';
import { createAccount } from '../support/factories.js';
import { startApi, startWorker, waitFor, type ApiHarness } from '../support/harness.js';
import { startRunOk } from '../support/runs.js';
import type { FleetMember } from '../../worker/fleet/fleetMember.js';

describe('a job whose run was erased while no worker could remove it', function () {
  this.timeout(60_000);
  let api: ApiHarness;
  let worker: FleetMember | undefined;
  afterEach(async () => {
    await worker?.close(1_000);
    await api.close();
  });

  it('fails without keeping the sealed run key in the job’s data (a worker paused during the erasure, the job still queued)', async () => {
    api = startApi();
    const alice = await createAccount(api.deps.db);
    const runId = await startRunOk(api.app, alice.key, { prompt: 'erased before it ran' });
    const run = await api.deps.db.run.findUniqueOrThrow({ where: { id: runId } });
    // The erasure's rows go while the job stays (its worker held it: the erasure could not remove it).
    await api.deps.db.session.delete({ where: { id: run.sessionId } });
    worker = await startWorker(api.prefix);
    const job = await waitFor(
      async () => {
        const found = await api.deps.runQueues.forRun(runId).getJob(runId);
        return found && (await found.getState()) === 'failed' ? found : null;
      },
      { what: 'the job to fail' },
    );
    expect(job.failedReason).to.match(/^run_not_found/);
    expect(job.data).to.deep.equal({ runId });
    expect(JSON.stringify(job.data)).not.to.include('ephemeralKey');
  });
});
