import type { Config } from '../infra/config.js';

/**
 * Every model provider runyard speaks, one row each: the model id's prefix (`openai/gpt-4o`), the
 * name people read, its OpenTelemetry `gen_ai.provider.name`, and — for a provider that needs a key — the variables of the deployment's key
 * and base URL. The provider name type, the list that model ids are checked against, the key
 * check at POST, which providers an account may bring its own key for, and the worker's clients
 * (worker/providers/index.ts, one file per provider) all derive from this table: a new provider
 * is its row here, its client file and its row there.
 */
export const PROVIDER_TABLE = {
  local: { label: 'local', genAiSystem: 'runyard.local', key: null },
  openai: { label: 'OpenAI', genAiSystem: 'openai', key: { variable: 'OPENAI_API_KEY', baseUrlVariable: 'OPENAI_BASE_URL' } },
  anthropic: { label: 'Anthropic', genAiSystem: 'anthropic', key: { variable: 'ANTHROPIC_API_KEY', baseUrlVariable: 'ANTHROPIC_BASE_URL' } },
} as const satisfies Record<string, { label: string; genAiSystem: string; key: { variable: keyof Config; baseUrlVariable: keyof Config } | null }>;

export type ProviderName = keyof typeof PROVIDER_TABLE;
export const PROVIDERS = Object.keys(PROVIDER_TABLE) as [ProviderName, ...ProviderName[]];

/** The providers that need a key: an account may bring its own for them. */
export type KeyedProvider = { [P in ProviderName]: (typeof PROVIDER_TABLE)[P]['key'] extends null ? never : P }[ProviderName];
export const KEYED_PROVIDERS = PROVIDERS.filter((provider) => PROVIDER_TABLE[provider].key !== null) as [KeyedProvider, ...KeyedProvider[]];

export const isKeyedProvider = (provider: ProviderName): provider is KeyedProvider => PROVIDER_TABLE[provider].key !== null;

/** The deployment's key and base URL for a keyed provider (either may be unset). */
export function deploymentKeyOf(config: Config, provider: KeyedProvider): { apiKey: string | undefined; baseUrl: string | undefined } {
  const { variable, baseUrlVariable } = PROVIDER_TABLE[provider].key;
  return { apiKey: config[variable] as string | undefined, baseUrl: config[baseUrlVariable] as string | undefined };
}
