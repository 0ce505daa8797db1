import { RunError } from '../../shared/infra/errors.js';

/** Parses Retry-After (seconds or an HTTP date) into milliseconds. */
export function retryAfterMs(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/**
 * The contract's retry rule for an HTTP answer from a provider: 408, 429 and 5xx retry; other 4xx
 * fail. A 401 or 403 is `provider_auth_failed`, naming whose key was refused (SPEC section 21: the
 * account's own, or the deployment's), not retried.
 */
export function providerHttpError(
  provider: string,
  status: number,
  message: string,
  retryAfter?: string | null,
  whose: 'deployment' | 'account' = 'deployment',
): RunError {
  if (status === 401 || status === 403) {
    const key = whose === 'account' ? "the account's own key (accounts provider-keys)" : `the deployment's key (${provider.toUpperCase()}_API_KEY)`;
    return new RunError('provider_auth_failed', `${provider} refused ${key}: ${status} ${message}`, false);
  }
  const retryable = status === 408 || status === 429 || status >= 500;
  const code = status === 429 ? 'provider_rate_limited' : status >= 500 ? 'provider_unavailable' : 'provider_rejected';
  return new RunError(code, `${provider} answered ${status}: ${message}`, retryable, status === 429 ? retryAfterMs(retryAfter) : undefined);
}

export const providerConnectionError = (provider: string, message: string) =>
  new RunError('provider_connection_failed', `${provider} connection failed: ${message}`, true);

export const providerTimeout = (provider: string, ms: number) => new RunError('provider_timeout', `${provider} sent nothing for ${ms} ms`, true);

export const providerStreamIncomplete = (provider: string) =>
  new RunError('provider_stream_incomplete', `${provider} ended the stream before the answer was complete`, true);

/**
 * Iterates a provider's stream, aborting it when no event arrives for `idleMs` (a stream that hangs).
 */
export async function* withIdleTimeout<T>(source: AsyncIterable<T>, idleMs: number, abort: () => void, onTimeout: () => Error): AsyncGenerator<T> {
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      abort();
    }, idleMs);
  };
  arm();
  try {
    for await (const item of source) {
      arm();
      yield item;
    }
  } catch (err) {
    if (timedOut) throw onTimeout();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) throw onTimeout();
}
