import { luaScript, pubsub, withScript, type RedisClient } from '../infra/redis.js';

/**
 * Provider limits shared by the fleet (SPEC section 15). MODEL_RATE_LIMITS names, per model or
 * provider pattern, the requests (rpm) and tokens (tpm) its calls may use per window
 * (MODEL_RATE_LIMIT_WINDOW_MS, a minute); every worker reserves from the same log in Redis before a
 * model call, so N workers together stay within what one would. A provider's 429 with Retry-After
 * pauses the model for every worker for that long.
 *
 * Each rule's log is a sorted set of the calls of the last window (member `<id>:<tokens>`, score
 * the time), under its own hash tag, changed by one script: it drops what left the window, then
 * either records the call or answers how long until it would fit.
 *
 * A pause is a key with the pause's time to live, and a message to every worker. A worker keeps
 * what it last learned of a model's pause and reads the key again once that is older than
 * PAUSE_RECHECK_MS: a pause reaches it at once by the message, or within that time by the read if
 * the message was lost (a reconnect) — and a model without a rule costs no round trip per call.
 */
export type RateRule = { pattern: string; rpm: number | null; tpm: number | null };

export function parseModelRateLimits(spec: string): RateRule[] {
  return spec
    .split(';')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const [pattern, limits] = entry.split('=') as [string, string];
      const rule: RateRule = { pattern, rpm: null, tpm: null };
      for (const limit of limits.split(',')) {
        const [unit, value] = limit.split(':') as ['rpm' | 'tpm', string];
        rule[unit] = Number(value);
      }
      return rule;
    });
}

/** The rule for a model: its own entry, else its provider's `provider/*`. */
export function ruleFor(rules: RateRule[], model: string): RateRule | undefined {
  return rules.find((rule) => rule.pattern === model) ?? rules.find((rule) => rule.pattern === `${model.split('/')[0]}/*`);
}

const RESERVE_SCRIPT = luaScript('reserveModelCall');

export type Capacity = { waitMs: 0 } | { waitMs: number; reason: 'rpm' | 'tpm' | 'paused' };

type RateCommands = { runyardReserve(key: string, ...args: (string | number)[]): Promise<[number, string]> };

let sequence = 0;

/** How long a worker trusts what it last read of a model's pause (the message of a new pause arrives sooner). */
export const PAUSE_RECHECK_MS = 200;

type PauseMessage = { model: string; ms: number };

/** The most models a worker keeps a pause state for (forgetting one only costs a read of its key). */
const PAUSES_KEPT = 1_000;

export class ModelRateLimiter {
  private readonly redis: RedisClient & RateCommands;
  /** What this worker knows of each model's pause: when it learned it, and until when the model is paused (in this process's clock). */
  private readonly pauses = new Map<string, { learnedAt: number; until: number }>();

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly rules: RateRule[],
    private readonly windowMs: number,
    private readonly pauseRecheckMs = PAUSE_RECHECK_MS,
  ) {
    this.redis = withScript<RateCommands>(redis, 'runyardReserve', 1, RESERVE_SCRIPT);
  }

  /** Reserves a call of `model` using about `tokens` tokens (estimated only where the model has a rule), or says how long until one would fit (nothing reserved then). */
  async reserve(model: string, tokens: number | (() => number)): Promise<Capacity> {
    const paused = await this.pausedFor(model);
    if (paused > 0) return { waitMs: paused, reason: 'paused' };
    const rule = ruleFor(this.rules, model);
    if (!rule) return { waitMs: 0 };
    if (typeof tokens === 'function') tokens = tokens();
    const member = `${process.pid}-${Date.now()}-${sequence++}:${Math.max(0, Math.ceil(tokens))}`;
    const [waitMs, reason] = await this.redis.runyardReserve(
      `${this.prefix}:{ratelimit:${rule.pattern}}:calls`,
      Date.now(),
      this.windowMs,
      rule.rpm ?? 0,
      rule.tpm ?? 0,
      Math.ceil(tokens),
      member,
    );
    return waitMs > 0 ? { waitMs, reason: reason as 'rpm' | 'tpm' } : { waitMs: 0 };
  }

  /** The provider answered 429 with Retry-After: no worker calls the model until then (a longer pause already set stays). */
  async pause(model: string, ms: number): Promise<void> {
    const key = this.pauseKey(model);
    const left = await this.redis.pttl(key);
    if (left >= ms) return;
    const pauseMs = Math.max(1, Math.ceil(ms));
    await this.redis.set(key, '1', 'PX', pauseMs);
    this.learn(model, pauseMs);
    await pubsub.publish(this.redis, this.pauseChannel(), JSON.stringify({ model, ms: pauseMs } satisfies PauseMessage));
  }

  /** Listens on `subscriber` for the pauses other workers set. */
  listen(subscriber: RedisClient, onError: (err: Error) => void): void {
    const channel = this.pauseChannel();
    pubsub.onMessage(subscriber, (from, message) => {
      if (from !== channel) return;
      try {
        const pause = JSON.parse(message) as PauseMessage;
        this.learn(pause.model, pause.ms);
      } catch (err) {
        onError(err as Error);
      }
    });
    pubsub.subscribe(subscriber, channel).catch(onError);
  }

  /** How long `model` stays paused (0: not paused), from what this worker knows or, when that is older than the recheck time, from Redis. */
  private async pausedFor(model: string): Promise<number> {
    const known = this.pauses.get(model);
    const now = Date.now();
    if (known && now - known.learnedAt < this.pauseRecheckMs) return Math.max(0, known.until - now);
    const left = await this.redis.pttl(this.pauseKey(model));
    this.learn(model, Math.max(0, left), now);
    return Math.max(0, left);
  }

  private learn(model: string, ms: number, now = Date.now()): void {
    const known = this.pauses.get(model);
    // A message about a shorter pause than one already known does not shorten it.
    const until = Math.max(now + ms, known && now - known.learnedAt < this.pauseRecheckMs ? known.until : 0);
    // Callers name models: what is known of them is kept for the models in use, not every name ever seen.
    if (!known && this.pauses.size >= PAUSES_KEPT) {
      for (const [name, entry] of this.pauses) if (now - entry.learnedAt >= this.pauseRecheckMs && entry.until <= now) this.pauses.delete(name);
      if (this.pauses.size >= PAUSES_KEPT) this.pauses.delete(this.pauses.keys().next().value!);
    }
    this.pauses.set(model, { learnedAt: now, until });
  }

  private pauseChannel(): string {
    return `${this.prefix}:model-paused`;
  }

  private pauseKey(model: string): string {
    return `${this.prefix}:{ratelimit:${model}}:paused`;
  }
}
