import { DelayedError, UnrecoverableError, type Job, type Processor } from 'bullmq';
import { runJobSchema, type RunJobData } from '../../shared/runs/runJob.js';
import type { RunAdmission } from '../../shared/flow/runAdmission.js';
import { FENCED } from '../attempt/processRun.js';

const BEAT_EVERY_MS = 1_000;

/**
 * Tells the fair scheduler (SPEC section 15) what this worker does with run jobs: its job slots
 * (every second, which also lets the scheduler release what may start), a job taken (`started`), a
 * run still going (`beat`, every second), and a job over (`released`) — unless it comes back: handed back delayed (a wait for
 * model capacity, a dependency, a shutdown), retried after a failure, or taken over by another
 * attempt (fenced), in which cases the run still holds its account's place.
 */
export class AdmissionReports {
  private readonly held = new Map<string, RunJobData>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly admission: RunAdmission,
    private readonly workerId: string,
    private readonly slots: number,
  ) {}

  wrap(processor: Processor): Processor {
    return async (job: Job, token?: string) => {
      const parsed = runJobSchema.safeParse(job.data);
      if (!parsed.success) return processor(job, token);
      const data = parsed.data;
      this.admission.started(data);
      this.held.set(data.runId, data);
      let over = true;
      try {
        return await processor(job, token);
      } catch (err) {
        over = !comesBack(job, err);
        throw err;
      } finally {
        this.held.delete(data.runId);
        if (over) this.admission.released(data);
      }
    };
  }

  /** Says every second that this worker is there with its slots, and renews the runs it holds. */
  start(): void {
    const beat = () => {
      this.admission.workerSlots(this.workerId, this.slots);
      this.admission.beat(this.held.values());
    };
    beat();
    this.timer = setInterval(beat, BEAT_EVERY_MS);
    this.timer.unref();
  }

  /** The worker stops taking jobs: its slots are no longer the fleet's. */
  stop(): void {
    clearInterval(this.timer);
    this.admission.workerSlots(this.workerId, 0);
  }
}

function comesBack(job: Job, err: unknown): boolean {
  if (err instanceof DelayedError) return true;
  if (err instanceof UnrecoverableError) return err.message.startsWith(`${FENCED}:`);
  return job.attemptsMade + 1 < (job.opts.attempts ?? 1);
}
