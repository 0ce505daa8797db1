import type { Config } from '../infra/config.js';
import { catalogueContextTokens } from './modelCatalogue.js';

/**
 * Every model's context window, in tokens (SPEC section 13): `local/echo`'s is
 * LOCAL_MODEL_CONTEXT_TOKENS; others come from the operator's model catalogue, then MODEL_CONTEXT_TOKENS (an exact id first, then a
 * `provider/*` pattern), then from this table of known models. A model in none of them has no known
 * window: it is never compacted, and only its provider can say its input is too long.
 */
const KNOWN_WINDOWS: Record<string, number> = {
  'openai/gpt-4o': 128_000,
  'openai/gpt-4o-mini': 128_000,
  'openai/gpt-4.1': 1_047_576,
  'openai/gpt-4.1-mini': 1_047_576,
  'openai/gpt-4.1-nano': 1_047_576,
  'openai/o3': 200_000,
  'openai/o4-mini': 200_000,
  'openai/gpt-5': 400_000,
  'openai/gpt-5-mini': 400_000,
  'anthropic/claude-sonnet-4-5': 200_000,
  'anthropic/claude-sonnet-4-0': 200_000,
  'anthropic/claude-opus-4-1': 200_000,
  'anthropic/claude-haiku-4-5': 200_000,
  'anthropic/claude-3-5-haiku-latest': 200_000,
};

export type ContextWindows = (modelId: string) => number | null;

export function contextWindows(config: Pick<Config, 'MODEL_CONTEXT_TOKENS' | 'LOCAL_MODEL_CONTEXT_TOKENS'>): ContextWindows {
  const exact = new Map<string, number>();
  const patterns = new Map<string, number>();
  for (const entry of config.MODEL_CONTEXT_TOKENS) {
    const at = entry.lastIndexOf('=');
    const [model, tokens] = [entry.slice(0, at), Number(entry.slice(at + 1))];
    if (model.endsWith('/*')) patterns.set(model.slice(0, -1), tokens);
    else exact.set(model, tokens);
  }
  return (modelId) => {
    if (modelId === 'local/echo') return config.LOCAL_MODEL_CONTEXT_TOKENS;
    const catalogued = catalogueContextTokens(modelId);
    if (catalogued !== null) return catalogued;
    const configured = exact.get(modelId) ?? patterns.get(modelId.slice(0, modelId.indexOf('/') + 1));
    return configured ?? KNOWN_WINDOWS[modelId] ?? null;
  };
}

/**
 * A lower bound of a text's tokens: its words. Tokenizers of the providers split words into one or
 * more tokens (and local/echo counts exactly a token per word), so a text estimated over a window
 * cannot fit it — runyard refuses only what the provider would refuse too.
 */
export const tokensAtLeast = (text: string): number => text.match(/\S+/g)?.length ?? 0;
