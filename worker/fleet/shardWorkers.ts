import { Job, Worker, type Processor, type WorkerOptions } from 'bullmq';

/**
 * One process's job slots, shared by the workers of every run queue shard. A slot is taken before a
 * job is moved to active and given back once the job is finished in Redis, so the process never runs
 * more than `size` jobs whatever the shard count. Waiting shards are served first come, first served:
 * a freed slot goes to the shard that has waited longest, so a busy shard cannot starve the others.
 */
export class ConcurrencyBudget {
  private inUse = 0;
  private readonly waiting: { owner: object; grant: (granted: boolean) => void }[] = [];
  private readonly stopped = new WeakSet<object>();

  constructor(readonly size: number) {}

  /** A slot now if one is free and nobody is waiting for one (waiters come first). */
  tryAcquire(owner: object): boolean {
    if (this.stopped.has(owner) || this.inUse >= this.size || this.waiting.length > 0) return false;
    this.inUse++;
    return true;
  }

  /** Resolves true with a slot, or false once `owner` stopped (it must then not take a job). */
  acquire(owner: object): Promise<boolean> {
    if (this.stopped.has(owner)) return Promise.resolve(false);
    if (this.tryAcquire(owner)) return Promise.resolve(true);
    return new Promise((grant) => this.waiting.push({ owner, grant }));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next.grant(true);
    else this.inUse--;
  }

  /** `owner` is closing: its waits end without a slot, now and later. */
  stop(owner: object): void {
    this.stopped.add(owner);
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const waiter = this.waiting[i]!;
      if (waiter.owner !== owner) continue;
      this.waiting.splice(i, 1);
      waiter.grant(false);
    }
  }
}

/**
 * A BullMQ worker whose jobs count against a shared ConcurrencyBudget. It takes a slot before each
 * move to active (BullMQ's only way of taking a job once finishing a job no longer fetches the next
 * one in the same call) and gives it back after the job's completion or failure is written.
 *
 * BullMQ's main loop fetches several jobs before it starts them, and waits for each fetch. So a
 * worker holding fetched jobs that have not started yet never waits for a slot (they could be the
 * very slots it waits for): it answers "no job" at once, the loop starts what it holds, and the next
 * fetch, with nothing of its own pending, queues for a slot.
 */
export class BudgetedWorker extends Worker {
  private fetchedNotStarted = 0;

  constructor(
    queueName: string,
    processor: Processor,
    opts: WorkerOptions,
    private readonly budget: ConcurrencyBudget,
  ) {
    super(queueName, processor, { ...opts, concurrency: budget.size });
  }

  protected override async moveToActive(token: string, name?: string): Promise<Job> {
    const slot = this.fetchedNotStarted > 0 ? this.budget.tryAcquire(this) : await this.budget.acquire(this);
    if (!slot) return undefined as unknown as Job;
    try {
      const job = await super.moveToActive(token, name);
      if (job) this.fetchedNotStarted++;
      else this.budget.release();
      return job;
    } catch (err) {
      this.budget.release();
      throw err;
    }
  }

  override async processJob(job: Job, token: string): Promise<void | Job> {
    this.fetchedNotStarted--;
    try {
      // No fetching of the next job with this one's completion: that would take a job without a slot.
      return await super.processJob(job, token, () => false);
    } finally {
      this.budget.release();
    }
  }

  override close(force?: boolean): Promise<void> {
    this.budget.stop(this);
    return super.close(force);
  }
}

/**
 * The run workers of one process: one per queue shard, within `concurrency` jobs in all. One shard
 * is a plain BullMQ worker (its own concurrency is the budget, and it keeps BullMQ's fetch of the
 * next job in the same call that finishes one).
 */
export function createRunWorkers(queueNames: readonly string[], processor: Processor, opts: WorkerOptions, concurrency: number): Worker[] {
  if (queueNames.length === 1) return [new Worker(queueNames[0]!, processor, { ...opts, concurrency })];
  const budget = new ConcurrencyBudget(concurrency);
  return queueNames.map((name) => new BudgetedWorker(name, processor, opts, budget));
}
