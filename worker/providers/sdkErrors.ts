import { RunError } from '../../shared/infra/errors.js';
import { providerConnectionError, providerHttpError, providerStreamIncomplete } from './providerErrors.js';

type SdkApiError = Error & { status?: number; headers?: Headers | Record<string, string> };

function headerOf(headers: SdkApiError['headers'], name: string): string | null {
  if (!headers) return null;
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name);
  return (headers as Record<string, string>)[name] ?? null;
}

/**
 * Maps an error thrown by the OpenAI or Anthropic SDK (same shape: APIError with status and headers,
 * APIConnectionError without) to a RunError. An abort from the run's own signal is rethrown untouched.
 */
export function fromSdkError(
  provider: string,
  err: unknown,
  signal: AbortSignal,
  streamStarted: boolean,
  whose: 'deployment' | 'account' = 'deployment',
): unknown {
  if (signal.aborted || err instanceof RunError) return err;
  const apiError = err as SdkApiError;
  if (typeof apiError.status === 'number') {
    return providerHttpError(provider, apiError.status, apiError.message, headerOf(apiError.headers, 'retry-after'), whose);
  }
  if (apiError?.name === 'AbortError') return err;
  // The connection broke after the answer had begun: the stream stopped mid-answer.
  if (streamStarted) return providerStreamIncomplete(provider);
  return providerConnectionError(provider, apiError?.message ?? String(err));
}
