/**
 * Turns many concurrent calls into few statements. A call goes out at once when fewer than
 * `concurrency` batches of its group are in flight, so an idle system adds no latency; calls that
 * arrive while the group is busy wait and go out together as the next batch. Under load a run's
 * writes then share a transaction (one commit, one round trip) with its neighbours'.
 *
 * - Items of different groups never share a batch (a batch that takes per-account locks holds one
 *   account's items, so two batches cannot lock accounts in opposite orders).
 * - Items with the same key never share a batch (each gets its own answer, in order).
 * - If a batch of several fails, each item is tried again on its own, so one bad item fails alone.
 */
export type BatcherOptions<In> = {
  /** Most items in one batch. */
  maxBatch: number;
  /** Batches of one group in flight at once. */
  concurrency: number;
  group?: (item: In) => string;
  key?: (item: In) => string;
  /** Told each batch's size (for a metric). */
  onBatch?: (size: number) => void;
};

/** Runs a batch; answers the items in order. */
export type BatchHandler<In, Out> = (items: In[]) => Promise<Out[]>;

type Pending<In, Out> = { item: In; resolve: (out: Out) => void; reject: (err: unknown) => void };
type Group<In, Out> = { queue: Pending<In, Out>[]; inFlight: number };

export class Batcher<In, Out> {
  private readonly groups = new Map<string, Group<In, Out>>();

  constructor(
    private readonly handle: BatchHandler<In, Out>,
    private readonly opts: BatcherOptions<In>,
  ) {}

  submit(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      const name = this.opts.group?.(item) ?? '';
      let group = this.groups.get(name);
      if (!group) this.groups.set(name, (group = { queue: [], inFlight: 0 }));
      group.queue.push({ item, resolve, reject });
      this.pump(name, group);
    });
  }

  private pump(name: string, group: Group<In, Out>): void {
    while (group.inFlight < this.opts.concurrency && group.queue.length > 0) {
      const batch = this.take(group);
      this.opts.onBatch?.(batch.length);
      group.inFlight++;
      void this.execute(batch).finally(() => {
        group.inFlight--;
        if (group.queue.length > 0) this.pump(name, group);
        else if (group.inFlight === 0) this.groups.delete(name);
      });
    }
  }

  private take(group: Group<In, Out>): Pending<In, Out>[] {
    const batch: Pending<In, Out>[] = [];
    const rest: Pending<In, Out>[] = [];
    const keys = new Set<string>();
    for (const pending of group.queue) {
      const key = this.opts.key?.(pending.item);
      if (batch.length < this.opts.maxBatch && (key === undefined || !keys.has(key))) {
        batch.push(pending);
        if (key !== undefined) keys.add(key);
      } else {
        rest.push(pending);
      }
    }
    group.queue = rest;
    return batch;
  }

  private async execute(batch: Pending<In, Out>[]): Promise<void> {
    try {
      const results = await this.handle(batch.map((pending) => pending.item));
      batch.forEach((pending, i) => pending.resolve(results[i] as Out));
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      await Promise.all(batch.map((pending) => this.handle([pending.item]).then(([result]) => pending.resolve(result as Out), pending.reject)));
    }
  }
}
