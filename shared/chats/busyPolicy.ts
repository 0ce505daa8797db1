/**
 * What a chat message does when its chat already has an active run (`onBusy`; SPEC section 12): one
 * row per behaviour. A new behaviour is a new row here (and its name in the request schema, which
 * takes its list from ON_BUSY); sendMessage applies the row, nothing else decides.
 */
export const BUSY_POLICY = {
  /** Waits behind the queued messages; the active run finishes first. */
  queue: { refused: false, queueAt: 'back', interruptsActiveRun: false },
  /** Goes to the front of the queue, and the active run is stopped: its end starts this message's run. */
  interrupt: { refused: false, queueAt: 'front', interruptsActiveRun: true },
  /** Refused with 409 chat_busy, naming the active run; nothing changes. */
  reject: { refused: true, queueAt: null, interruptsActiveRun: false },
} as const satisfies Record<string, BusyBehaviour>;

export type BusyBehaviour = { refused: boolean; queueAt: 'front' | 'back' | null; interruptsActiveRun: boolean };
export type OnBusy = keyof typeof BUSY_POLICY;
export const ON_BUSY = Object.keys(BUSY_POLICY) as [OnBusy, ...OnBusy[]];
/** What a message that names no behaviour does. */
export const DEFAULT_ON_BUSY: OnBusy = 'queue';

/** Where a message queued with `behaviour` goes, given the queue's first and last positions (null: empty). */
export function queuePosition(behaviour: BusyBehaviour, queue: { first: bigint | null; last: bigint | null }): bigint {
  return behaviour.queueAt === 'front' ? (queue.first ?? 1n) - 1n : (queue.last ?? 0n) + 1n;
}
