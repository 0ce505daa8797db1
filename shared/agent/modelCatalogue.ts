import type { Db } from '../infra/db.js';
import type { Logger } from '../infra/logger.js';

/**
 * The model catalogue (SPEC section 21): what runyard knows of each model — its price (USD per
 * million tokens, which is the same number as micro-dollars per token), context window, what it
 * reads (images, PDFs), whether it is enabled and which one is the default. The built-in table is
 * where it starts; the operator's rows (`model_catalogue`, CLI `models set`, the admin API) override
 * it model by model. Every api and worker process keeps the operator's rows in memory, read again
 * every few seconds (and at once by the process that changed them), so pricing a call costs no query.
 */
export type Price = { input: number; output: number; cachedInput?: number };

type BuiltIn = { price: Price; images: boolean; pdf: boolean };

const BUILT_IN: Record<string, BuiltIn> = {
  'local/echo': { price: { input: 0, output: 0 }, images: true, pdf: true },
  'openai/gpt-4o': { price: { input: 2.5, output: 10, cachedInput: 1.25 }, images: true, pdf: true },
  'openai/gpt-4o-mini': { price: { input: 0.15, output: 0.6, cachedInput: 0.075 }, images: true, pdf: true },
  'openai/gpt-4.1': { price: { input: 2, output: 8, cachedInput: 0.5 }, images: true, pdf: true },
  'openai/gpt-4.1-mini': { price: { input: 0.4, output: 1.6, cachedInput: 0.1 }, images: true, pdf: true },
  'openai/gpt-4.1-nano': { price: { input: 0.1, output: 0.4, cachedInput: 0.025 }, images: true, pdf: true },
  'openai/o4-mini': { price: { input: 1.1, output: 4.4, cachedInput: 0.275 }, images: true, pdf: true },
  'anthropic/claude-sonnet-4-5': { price: { input: 3, output: 15, cachedInput: 0.3 }, images: true, pdf: true },
  'anthropic/claude-sonnet-4-0': { price: { input: 3, output: 15, cachedInput: 0.3 }, images: true, pdf: true },
  'anthropic/claude-opus-4-1': { price: { input: 15, output: 75, cachedInput: 1.5 }, images: true, pdf: true },
  'anthropic/claude-haiku-4-5': { price: { input: 1, output: 5, cachedInput: 0.1 }, images: true, pdf: true },
  'anthropic/claude-3-5-haiku-latest': { price: { input: 0.8, output: 4, cachedInput: 0.08 }, images: true, pdf: false },
};

export type OperatorEntry = {
  modelId: string;
  price: Price | null;
  contextTokens: number | null;
  images: boolean;
  pdf: boolean;
  disabled: boolean;
  isDefault: boolean;
};

let operatorRows = new Map<string, OperatorEntry>();

/** The price a call of `modelId` is charged at now: the operator's row, else the built-in table; undefined: unpriced. */
export function priceOf(modelId: string): Price | undefined {
  const row = operatorRows.get(modelId);
  if (row) return row.price ?? undefined;
  return BUILT_IN[modelId]?.price;
}

/** Whether runyard knows the model (built in, or in the operator's catalogue): its id may be a metrics label. */
export const isCatalogued = (modelId: string): boolean => modelId in BUILT_IN || operatorRows.has(modelId);

export const isDisabled = (modelId: string): boolean => operatorRows.get(modelId)?.disabled ?? false;

/** The operator's default model, if one is marked. */
export function catalogueDefault(): string | undefined {
  for (const row of operatorRows.values()) if (row.isDefault && !row.disabled) return row.modelId;
  return undefined;
}

/** The context window the operator set for the model, if any (it overrides the built-in table and MODEL_CONTEXT_TOKENS). */
export const catalogueContextTokens = (modelId: string): number | null => operatorRows.get(modelId)?.contextTokens ?? null;

/** What the model reads besides text (SPEC section 20 asks it before a message carries an image or a PDF). */
export function readsOf(modelId: string): { images: boolean; pdf: boolean } {
  const row = operatorRows.get(modelId);
  const builtIn = BUILT_IN[modelId];
  return { images: row?.images ?? builtIn?.images ?? false, pdf: row?.pdf ?? builtIn?.pdf ?? false };
}

export type CatalogueView = {
  id: string;
  contextTokens: number | null;
  prices: { inputUsdPerMTok: number; outputUsdPerMTok: number; cachedInputUsdPerMTok: number | null } | null;
  reads: { images: boolean; pdf: boolean };
  enabled: boolean;
  default: boolean;
  source: 'built-in' | 'operator';
};

/** Every model of the catalogue as GET /api/models shows it, sorted by id. */
export function catalogueViews(defaultModel: string, contextTokens: (modelId: string) => number | null): CatalogueView[] {
  const ids = new Set([...Object.keys(BUILT_IN), ...operatorRows.keys()]);
  const chosenDefault = catalogueDefault() ?? defaultModel;
  return [...ids].sort().map((id) => {
    const row = operatorRows.get(id);
    const price = priceOf(id);
    return {
      id,
      contextTokens: row?.contextTokens ?? contextTokens(id),
      prices: price ? { inputUsdPerMTok: price.input, outputUsdPerMTok: price.output, cachedInputUsdPerMTok: price.cachedInput ?? null } : null,
      reads: readsOf(id),
      enabled: !(row?.disabled ?? false),
      default: id === chosenDefault,
      source: row ? 'operator' : 'built-in',
    };
  });
}

type Row = {
  model_id: string;
  input_usd_per_mtok: string | null;
  output_usd_per_mtok: string | null;
  cached_input_usd_per_mtok: string | null;
  context_tokens: number | null;
  images: boolean;
  pdf: boolean;
  disabled: boolean;
  is_default: boolean;
};

/** Reads the operator's rows again (each process: every few seconds, and at once after it changed them). */
export async function refreshCatalogue(db: Db): Promise<void> {
  const rows = await db.$queryRaw<Row[]>`
    SELECT model_id, input_usd_per_mtok::text, output_usd_per_mtok::text, cached_input_usd_per_mtok::text, context_tokens, images, pdf, disabled, is_default
    FROM model_catalogue`;
  operatorRows = new Map(
    rows.map((row) => [
      row.model_id,
      {
        modelId: row.model_id,
        price:
          row.input_usd_per_mtok === null || row.output_usd_per_mtok === null
            ? null
            : {
                input: Number(row.input_usd_per_mtok),
                output: Number(row.output_usd_per_mtok),
                ...(row.cached_input_usd_per_mtok === null ? {} : { cachedInput: Number(row.cached_input_usd_per_mtok) }),
              },
        contextTokens: row.context_tokens,
        images: row.images,
        pdf: row.pdf,
        disabled: row.disabled,
        isDefault: row.is_default,
      },
    ]),
  );
}

/** Keeps this process's catalogue current; the returned function stops it. */
export function startCatalogueRefresh(db: Db, logger: Logger, everyMs = 5_000): () => void {
  const refresh = () => refreshCatalogue(db).catch((err: Error) => logger.warn('could not read the model catalogue', { error: err.message }));
  void refresh();
  const timer = setInterval(() => void refresh(), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

export type CatalogueChange = {
  inputUsdPerMTok?: number | null;
  outputUsdPerMTok?: number | null;
  cachedInputUsdPerMTok?: number | null;
  contextTokens?: number | null;
  images?: boolean;
  pdf?: boolean;
  disabled?: boolean;
  default?: boolean;
};

/**
 * Sets the operator's row for a model (the CLI's `models set`, the admin API): a field not named
 * keeps its value (a new row starts from the built-in one); `default` moves the default to it.
 */
export async function setCatalogueEntry(db: Db, modelId: string, change: CatalogueChange): Promise<void> {
  const builtIn = BUILT_IN[modelId];
  await db.$transaction(async (tx) => {
    if (change.default) await tx.$executeRaw`UPDATE model_catalogue SET is_default = false WHERE is_default AND model_id <> ${modelId}`;
    await tx.$executeRaw`
      INSERT INTO model_catalogue (model_id, input_usd_per_mtok, output_usd_per_mtok, cached_input_usd_per_mtok, context_tokens, images, pdf, disabled, is_default)
      VALUES (${modelId}, ${builtIn?.price.input ?? null}::numeric, ${builtIn?.price.output ?? null}::numeric, ${builtIn?.price.cachedInput ?? null}::numeric,
        NULL, ${builtIn?.images ?? false}, ${builtIn?.pdf ?? false}, false, false)
      ON CONFLICT (model_id) DO NOTHING`;
    const set = <T>(value: T | undefined) => value !== undefined;
    await tx.$executeRaw`
      UPDATE model_catalogue SET
        input_usd_per_mtok = CASE WHEN ${set(change.inputUsdPerMTok)} THEN ${change.inputUsdPerMTok ?? null}::numeric ELSE input_usd_per_mtok END,
        output_usd_per_mtok = CASE WHEN ${set(change.outputUsdPerMTok)} THEN ${change.outputUsdPerMTok ?? null}::numeric ELSE output_usd_per_mtok END,
        cached_input_usd_per_mtok = CASE WHEN ${set(change.cachedInputUsdPerMTok)} THEN ${change.cachedInputUsdPerMTok ?? null}::numeric ELSE cached_input_usd_per_mtok END,
        context_tokens = CASE WHEN ${set(change.contextTokens)} THEN ${change.contextTokens ?? null}::int ELSE context_tokens END,
        images = COALESCE(${change.images ?? null}::boolean, images),
        pdf = COALESCE(${change.pdf ?? null}::boolean, pdf),
        disabled = COALESCE(${change.disabled ?? null}::boolean, disabled),
        is_default = COALESCE(${change.default ?? null}::boolean, is_default),
        updated_at = now()
      WHERE model_id = ${modelId}`;
  });
  await refreshCatalogue(db);
}

/** Removes the operator's row (the model goes back to the built-in table, or out of the catalogue); false if there was none. */
export async function unsetCatalogueEntry(db: Db, modelId: string): Promise<boolean> {
  const removed = await db.$executeRaw`DELETE FROM model_catalogue WHERE model_id = ${modelId}`;
  await refreshCatalogue(db);
  return removed > 0;
}
