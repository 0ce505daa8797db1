import type { Config } from '../../shared/infra/config.js';
import { RunError } from '../../shared/infra/errors.js';
import type { ProviderName } from '../../shared/agent/models.js';
import { AnthropicProvider } from './anthropic.js';
import { LocalEchoProvider } from './localEcho.js';
import { OpenAIProvider } from './openai.js';
import type { ModelProvider } from './types.js';

export type ProviderRegistry = (provider: ProviderName) => ModelProvider;

/** One client per provider per worker process, created on first use. */
export function createProviderRegistry(config: Config): ProviderRegistry {
  const made = new Map<ProviderName, ModelProvider>();
  const create = (provider: ProviderName): ModelProvider => {
    const timeouts = { timeoutMs: config.PROVIDER_TIMEOUT_MS };
    switch (provider) {
      case 'local':
        return new LocalEchoProvider(config.LOCAL_MODEL_DELAY_MS);
      case 'openai':
        if (!config.OPENAI_API_KEY) throw new RunError('model_unavailable', 'OPENAI_API_KEY is not set on this worker', false);
        return new OpenAIProvider({ apiKey: config.OPENAI_API_KEY, baseURL: config.OPENAI_BASE_URL, ...timeouts }, config.PROVIDER_IDLE_TIMEOUT_MS);
      case 'anthropic':
        if (!config.ANTHROPIC_API_KEY) throw new RunError('model_unavailable', 'ANTHROPIC_API_KEY is not set on this worker', false);
        return new AnthropicProvider({ apiKey: config.ANTHROPIC_API_KEY, baseURL: config.ANTHROPIC_BASE_URL, ...timeouts }, config.PROVIDER_IDLE_TIMEOUT_MS);
    }
  };
  return (provider) => {
    let provided = made.get(provider);
    if (!provided) {
      provided = create(provider);
      made.set(provider, provided);
    }
    return provided;
  };
}
