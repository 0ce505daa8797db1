/**
 * A run's priority (SPEC section 15): within one account, a higher priority run starts before a
 * lower one that waits beside it; between accounts, fair share decides (priority is not a way to
 * take more of the fleet).
 */
export const PRIORITIES = ['high', 'normal', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];
export const DEFAULT_PRIORITY: Priority = 'normal';

/** The order an account's waiting runs start in: band 0 (high) first. */
export const priorityBand = (priority: Priority | undefined): number => PRIORITIES.indexOf(priority ?? DEFAULT_PRIORITY);
