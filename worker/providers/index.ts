import { createHash } from 'node:crypto';
import type { Config } from '../../shared/infra/config.js';
import { RunError } from '../../shared/infra/errors.js';
import { deploymentKeyOf, isKeyedProvider, PROVIDER_TABLE, type KeyedProvider, type ProviderName } from '../../shared/agent/providerTable.js';
import { AnthropicProvider } from './anthropic.js';
import { LocalEchoProvider } from './localEcho.js';
import { OpenAIProvider } from './openai.js';
import type { ModelProvider } from './types.js';

type ClientOptions = { apiKey: string; baseURL: string | undefined; timeoutMs: number; whose: 'account' | 'deployment' };

/** Each keyed provider's client, one file each (the rows of shared/agent/providerTable.ts name their keys). */
const CLIENTS: Record<KeyedProvider, (options: ClientOptions, config: Config) => ModelProvider> = {
  openai: (options, config) => new OpenAIProvider(options, config.PROVIDER_IDLE_TIMEOUT_MS),
  anthropic: (options, config) => new AnthropicProvider(options, config.PROVIDER_IDLE_TIMEOUT_MS),
};

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
    if (!isKeyedProvider(provider)) return new LocalEchoProvider(config.LOCAL_MODEL_DELAY_MS);
    const deployment = deploymentKeyOf(config, provider);
    const apiKey = accountKey?.apiKey ?? deployment.apiKey;
    if (!apiKey) throw new RunError('model_unavailable', `${PROVIDER_TABLE[provider].key.variable} is not set on this worker`, false);
    const baseURL = accountKey ? (accountKey.baseUrl ?? undefined) : deployment.baseUrl;
    return CLIENTS[provider]({ apiKey, baseURL, timeoutMs: config.PROVIDER_TIMEOUT_MS, whose: accountKey ? 'account' : 'deployment' }, config);
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
