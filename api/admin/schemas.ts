import { ADMIN_GROUPS } from '../../shared/accounts/usageReports.js';
import { KEYED_PROVIDERS, PROVIDERS } from '../../shared/agent/providerTable.js';
import { z } from 'zod';
import { DURATION_PATTERN } from '../../shared/infra/durations.js';
import { runStatusSchema } from '../http/schemas.js';
import { reportPeriod } from '../usage/schemas.js';

// The operator's request and answer schemas: runs and replays, webhooks, accounts (limits,
// settings, secrets, provider keys, erasure), the model catalogue, the timeline, usage reports.

/** since / until on the admin routes: an ISO timestamp, or a duration back from now (`2h`), as the CLI takes them. */
const pointInTimeSchema = z
  .union([z.iso.datetime({ offset: true }), z.string().regex(DURATION_PATTERN)], { error: 'must be an ISO timestamp or a duration such as 30m, 2h, 7d' })
  .meta({ description: 'An ISO 8601 timestamp, or a duration back from now: 30s, 15m, 2h, 7d' });

export const operatorRunListQuerySchema = z.strictObject({
  status: runStatusSchema.optional(),
  since: pointInTimeSchema.optional(),
  limit: z.coerce.number().int().min(1).max(1_000).default(50),
});

export const operatorRunListSchema = z
  .object({
    runs: z.array(
      z.object({
        runId: z.uuid(),
        accountId: z.uuid(),
        status: runStatusSchema,
        model: z.string(),
        attempt: z.number().int(),
        createdAt: z.iso.datetime(),
        finishedAt: z.iso.datetime().nullable(),
        errorCode: z.string().nullable(),
        traceId: z.string().nullable(),
      }),
    ),
  })
  .meta({ id: 'OperatorRunList' });

export const replayBulkBodySchema = z
  .strictObject({
    status: z.literal('failed'),
    since: pointInTimeSchema.optional(),
    until: pointInTimeSchema.optional(),
    model: z.string().max(200).optional(),
    accountId: z.uuid().optional(),
    limit: z.number().int().min(1).max(1_000).default(100),
    dryRun: z.boolean().default(false),
  })
  .meta({ id: 'BulkReplayRequest' });

export type ReplayBulkBody = z.infer<typeof replayBulkBodySchema>;

export const webhookRedeliverBodySchema = z
  .strictObject({
    status: z.literal('failed'),
    since: pointInTimeSchema.optional(),
    limit: z.number().int().min(1).max(10_000).default(1_000),
  })
  .meta({ id: 'WebhookRedeliverRequest' });

export const webhookDeliveryListSchema = z
  .object({
    events: z.array(
      z.object({
        eventId: z.uuid(),
        webhookId: z.string(),
        type: z.string(),
        status: z.enum(['pending', 'delivered', 'failed']),
        attempts: z.number().int(),
        createdAt: z.iso.datetime(),
        deliveredAt: z.iso.datetime().nullable(),
        nextAttemptAt: z.iso.datetime().nullable(),
        lastError: z.string().nullable(),
        deliveries: z.array(
          z.object({ at: z.iso.datetime(), statusCode: z.number().int().nullable(), latencyMs: z.number().int(), error: z.string().nullable() }),
        ),
      }),
    ),
  })
  .meta({ id: 'WebhookDeliveryList' });

export const replayResponseSchema = z.object({ runId: z.uuid(), status: runStatusSchema, attempt: z.number().int() }).meta({ id: 'ReplayResponse' });

export const replayBulkResponseSchema = z
  .object({
    dryRun: z.boolean(),
    runs: z.array(z.object({ runId: z.uuid(), model: z.string().nullable(), replayed: z.boolean(), error: z.string().nullable() })),
  })
  .meta({ id: 'BulkReplayResponse' });

/** PUT /api/admin/accounts/{account}/limits (SPEC section 14): per UTC calendar period; null (or absent) means no limit of that kind. */
export const accountLimitsBodySchema = z
  .strictObject({
    period: z.enum(['day', 'week', 'month']),
    spendMicros: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
    tokens: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullable().optional(),
  })
  .refine((body) => body.spendMicros != null || body.tokens != null, { message: 'set spendMicros, tokens or both (DELETE clears the limits)' })
  .meta({ id: 'AccountLimitsRequest' });

/** PATCH /api/admin/accounts/{account}/settings: null puts a setting back to the deployment's default. */
export const accountSettingsBodySchema = z
  .strictObject({
    retentionDays: z.number().int().min(1).max(36_500).nullable().optional(),
    compactionThresholdPercent: z.number().int().min(1).max(100).nullable().optional(),
    weight: z.number().int().min(1).max(1000).nullable().optional().meta({ description: 'Its share of a saturated fleet against other accounts (default 1)' }),
    maxRunning: z.number().int().min(1).max(1_000_000).nullable().optional().meta({ description: 'Its running runs fleet-wide at most (null: no cap)' }),
    fileQuotaMb: z
      .number()
      .int()
      .min(1)
      .max(10_000_000)
      .nullable()
      .optional()
      .meta({ description: 'What its uploaded files may hold together, MiB (null: FILE_QUOTA_MB)' }),
  })
  .meta({ id: 'AccountSettingsRequest' });

// An account's name or id: printable text (a NUL or control character names no account; Postgres refuses NUL in text).
export const accountParamsSchema = z.strictObject({
  account: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[^\p{Cc}]+$/u, 'has control characters'),
});

export const accountSettingsSchema = z
  .object({
    account: z.string(),
    accountId: z.uuid(),
    retentionDays: z.number().int().nullable().describe('null: kept until an operator sets a period (RETENTION_DAYS has no default)'),
    retentionDaysIsDefault: z.boolean(),
    compactionThresholdPercent: z.number().int(),
    compactionThresholdIsDefault: z.boolean(),
    weight: z.number().int(),
    maxRunning: z.number().int().nullable(),
    fileQuotaMb: z.number().int(),
    fileQuotaIsDefault: z.boolean(),
  })
  .meta({ id: 'AccountSettings' });

export const erasedAccountSchema = z
  .object({ account: z.string(), accountId: z.uuid(), deleted: z.literal(true), chats: z.number().int(), runs: z.number().int() })
  .meta({ id: 'ErasedAccount' });

/** GET /api/admin/runs/{runId}/timeline (SPEC section 16): the run's attempts, steps, calls, waits and deliveries, in start order. */
export const runTimelineSchema = z.object({
  runId: z.uuid(),
  chatId: z.uuid(),
  accountId: z.uuid(),
  status: z.string(),
  model: z.string(),
  episode: z.number().int(),
  attempts: z.number().int(),
  traceId: z.string().nullable(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  replayable: z.boolean(),
  items: z.array(
    z.object({
      id: z.string(),
      parentId: z.string().nullable(),
      kind: z.enum(['run', 'queued', 'attempt', 'model_call', 'tool_call', 'wait', 'compaction', 'webhook_delivery', 'cleanup']),
      name: z.string(),
      startedAt: z.string(),
      endedAt: z.string().nullable(),
      outcome: z.string(),
      error: z.string().nullable(),
      details: z.record(z.string(), z.unknown()),
    }),
  ),
});

/** PUT /api/admin/models/{provider}/{model}: the operator's row (a field not sent keeps its value; null prices: unpriced). */
export const catalogueEntryBodySchema = z.strictObject({
  inputUsdPerMTok: z.number().min(0).max(1_000_000).nullable().optional(),
  outputUsdPerMTok: z.number().min(0).max(1_000_000).nullable().optional(),
  cachedInputUsdPerMTok: z.number().min(0).max(1_000_000).nullable().optional(),
  contextTokens: z.number().int().min(16).max(100_000_000).nullable().optional(),
  images: z.boolean().optional(),
  pdf: z.boolean().optional(),
  disabled: z.boolean().optional(),
  default: z.boolean().optional(),
});

export const catalogueModelParamsSchema = z.strictObject({
  provider: z.enum(PROVIDERS),
  model: z.string().regex(/^[\w.:-]{1,120}$/, 'is not a model name'),
});

/** PUT /api/admin/accounts/{account}/secrets/{name} */
export const accountSecretBodySchema = z.strictObject({ value: z.string().min(1).max(16_384) });

export const accountSecretParamsSchema = z.strictObject({
  account: z.string().min(1).max(200),
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'is not a secret name'),
});

/** PUT /api/admin/accounts/{account}/provider-keys/{provider} (SPEC section 21): the account's own key (and base URL). */
export const providerKeyBodySchema = z.strictObject({
  key: z.string().min(8).max(4_096),
  baseUrl: z
    .url({ protocol: /^https?$/ })
    .max(2_000)
    .nullable()
    .optional(),
});

export const providerKeyParamsSchema = z.strictObject({ account: z.string().min(1).max(200), provider: z.enum(KEYED_PROVIDERS) });

export const providerKeyListSchema = z.object({
  providerKeys: z.array(z.object({ provider: z.string(), baseUrl: z.string().nullable(), updatedAt: z.string() })),
});

/** GET /api/admin/usage/report (SPEC section 21). */
export const adminUsageReportQuerySchema = z.strictObject({ ...reportPeriod, groupBy: z.enum(ADMIN_GROUPS) });
