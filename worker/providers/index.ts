import { createHash } from 'node:crypto';
import type { Config } from '../../shared/infra/config.js';
import { RunError } from '../../shared/infra/errors.js';
import type { ProviderName } from '../../shared/agent/models.js';
import { AnthropicProvider } from './anthropic.js';
import { LocalEchoProvider } from './localEcho.js';
import { OpenAIProvider } from './openai.js';
import type { ModelProvider } from './types.js';

/** An account's own key for a provider (SPEC section 21), opened on the worker for the call. */
export type AccountProviderKey = { apiKey: string; baseUrl: string | null };

export type ProviderRegistry = (provider: ProviderName, accountKey?: AccountProviderKey) => ModelProvider;

/** Clients of accounts' own keys kept at once (the least recently made go first). */
const ACCOUNT_CLIENTS_MAX = 500;

/**
 * One client per provider per worker process, created on first use — with the deployment's key, or
 * with an account's own key (one client per key and base URL, a bounded number kept).
 */
export function createProviderRegistry(config: Config): ProviderRegistry {
  const made = new Map<string, ModelProvider>();
  const create = (provider: ProviderName, accountKey: AccountProviderKey | undefined): ModelProvider => {
    const timeouts = { timeoutMs: config.PROVIDER_TIMEOUT_MS };
    const whose = accountKey ? 'account' : 'deployment';
    switch (provider) {
      case 'local':
        return new LocalEchoProvider(config.LOCAL_MODEL_DELAY_MS);
      case 'openai': {
        const apiKey = accountKey?.apiKey ?? config.OPENAI_API_KEY;
        if (!apiKey) throw new RunError('model_unavailable', 'OPENAI_API_KEY is not set on this worker', false);
        const baseURL = accountKey ? (accountKey.baseUrl ?? undefined) : config.OPENAI_BASE_URL;
        return new OpenAIProvider({ apiKey, baseURL, ...timeouts, whose }, config.PROVIDER_IDLE_TIMEOUT_MS);
      }
      case 'anthropic': {
        const apiKey = accountKey?.apiKey ?? config.ANTHROPIC_API_KEY;
        if (!apiKey) throw new RunError('model_unavailable', 'ANTHROPIC_API_KEY is not set on this worker', false);
        const baseURL = accountKey ? (accountKey.baseUrl ?? undefined) : config.ANTHROPIC_BASE_URL;
        return new AnthropicProvider({ apiKey, baseURL, ...timeouts, whose }, config.PROVIDER_IDLE_TIMEOUT_MS);
      }
    }
  };
  return (provider, accountKey) => {
    const id = accountKey
      ? `${provider}|${createHash('sha256')
          .update(`${accountKey.apiKey}|${accountKey.baseUrl ?? ''}`)
          .digest('hex')}`
      : provider;
    let provided = made.get(id);
    if (!provided) {
      provided = create(provider, provider === 'local' ? undefined : accountKey);
      if (made.size >= ACCOUNT_CLIENTS_MAX) made.delete(made.keys().next().value as string);
      made.set(id, provided);
    }
    return provided;
  };
}
