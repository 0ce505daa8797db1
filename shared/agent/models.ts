import type { Config } from '../infra/config.js';
import { AppError } from '../infra/errors.js';
import { isCatalogued, isDisabled, priceOf } from './modelCatalogue.js';
import { deploymentKeyOf, isKeyedProvider, KEYED_PROVIDERS, PROVIDER_TABLE, PROVIDERS, type ProviderName } from './providerTable.js';

export type { ProviderName } from './providerTable.js';
export type ModelRef = { id: string; provider: ProviderName; name: string };

export type Usage = {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  reasoningTokens: number;
  totalTokens: number;
  /** Some of it is runyard's estimate: a model call cut short (cancel, interrupt, a failed attempt) before the provider counted it all. */
  estimated?: true;
};

export function parseModelId(id: string): ModelRef | undefined {
  const slash = id.indexOf('/');
  if (slash <= 0 || slash === id.length - 1) return undefined;
  const provider = id.slice(0, slash) as ProviderName;
  if (!PROVIDERS.includes(provider)) return undefined;
  return { id, provider, name: id.slice(slash + 1) };
}

/**
 * Rejects, at POST time, a model that no worker could run. `accountKey`: the account has its own
 * key for the model's provider (SPEC section 21), so the deployment needs none.
 */
export function resolveModel(id: string, config: Config, accountKey = false): ModelRef {
  const model = parseModelId(id);
  const fix = `Use local/echo, or a ${KEYED_PROVIDERS.map((provider) => `${provider}/<model>`).join(' or ')} whose provider key the server has.`;
  if (!model) throw new AppError('model_unavailable', 400, `Unknown model "${id}".`, fix);
  if (isDisabled(id))
    throw new AppError('model_disabled', 400, `The model "${id}" is disabled on this server.`, 'Pick another model (GET /api/models lists them).');
  if (model.provider === 'local' && model.name !== 'echo') {
    throw new AppError('model_unavailable', 400, `The local provider has no model "${model.name}".`, fix);
  }
  const { provider } = model;
  if (isKeyedProvider(provider) && !deploymentKeyOf(config, provider).apiKey && !accountKey) {
    const { label, key } = PROVIDER_TABLE[provider];
    throw new AppError(
      'model_unavailable',
      400,
      `No ${label} key is configured, so "${id}" cannot run.`,
      `Set ${key.variable} on the api and workers, give the account its own key (accounts provider-keys set), or pick another model.`,
    );
  }
  return model;
}

const toPico = (usdPerMTok: number) => BigInt(Math.round(usdPerMTok * 1_000_000));

/** Integer micro-dollars, rounded up once after summing; null when the model has no price. */
export function costMicros(modelId: string, usage: Usage): bigint | null {
  const price = priceOf(modelId);
  if (!price) return null;
  const cached = Math.min(usage.cachedInputTokens, usage.inputTokens);
  const picos =
    BigInt(usage.inputTokens - cached) * toPico(price.input) +
    BigInt(cached) * toPico(price.cachedInput ?? price.input) +
    BigInt(usage.outputTokens) * toPico(price.output);
  return (picos + 999_999n) / 1_000_000n;
}

/** A model id as a metrics label: a priced (known) model's id, else `other` — never a caller's arbitrary string. */
export const modelLabel = (modelId: string): string => (isCatalogued(modelId) ? modelId : 'other');

export const emptyUsage = (): Usage => ({ inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, reasoningTokens: 0, totalTokens: 0 });

/** What a model call costs its account (SPEC section 14): its input + output tokens, and its price (null: unpriced). */
export const chargeOf = (modelId: string, usage: Usage): { tokens: number; spendMicros: bigint | null } => ({
  tokens: usage.inputTokens + usage.outputTokens,
  spendMicros: costMicros(modelId, usage),
});

/** resolveModel for an account: its own provider key counts (one query, only when the deployment has no key for the provider). */
export async function resolveModelFor(id: string, config: Config, hasAccountKey: (provider: ProviderName) => Promise<boolean>): Promise<ModelRef> {
  const model = parseModelId(id);
  const needsAccountKey = model !== undefined && isKeyedProvider(model.provider) && !deploymentKeyOf(config, model.provider).apiKey;
  return resolveModel(id, config, needsAccountKey && (await hasAccountKey(model!.provider)));
}
