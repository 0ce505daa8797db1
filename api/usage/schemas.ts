import { ACCOUNT_GROUPS } from '../../shared/accounts/usageReports.js';
import { z } from 'zod';

// An account's usage and limits, and its usage reports.

const limitReachedSchema = z.object({
  kind: z.enum(['tokens', 'spendMicros']),
  limit: z.number().int(),
  consumed: z.number().int(),
  period: z.enum(['day', 'week', 'month']),
  resetsAt: z.string(),
});

/** GET /api/usage and the admin account usage routes. */
export const accountUsageSchema = z
  .object({
    period: z.enum(['day', 'week', 'month']),
    periodStart: z.string(),
    resetsAt: z.string(),
    consumed: z.object({ tokens: z.number().int(), spendMicros: z.number().int() }),
    limits: z.object({ spendMicros: z.number().int().nullable(), tokens: z.number().int().nullable() }).nullable(),
    limitReached: limitReachedSchema.nullable(),
  })
  .meta({ id: 'AccountUsage' });

export const reportPeriod = {
  from: z.iso.datetime({ offset: true }).or(z.iso.date()).optional().describe('default: the start of this UTC month'),
  to: z.iso.datetime({ offset: true }).or(z.iso.date()).optional().describe('exclusive; default: now'),
};

/** GET /api/usage/report (SPEC section 21). */
export const usageReportQuerySchema = z.strictObject({ ...reportPeriod, groupBy: z.enum(ACCOUNT_GROUPS) });

export const usageReportSchema = z.object({
  from: z.string(),
  to: z.string(),
  groupBy: z.string(),
  rows: z.array(z.record(z.string(), z.union([z.string(), z.number()]))),
});
