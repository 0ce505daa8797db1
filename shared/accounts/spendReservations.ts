import type { Db } from '../infra/db.js';
import { priceOf } from '../agent/modelCatalogue.js';
import { statement, type Sql } from '../infra/sql.js';
import type { LimitReached } from './usageLimits.js';

/**
 * Spend reservations (SPEC section 21). Before each model call of an account with limits, a worker
 * reserves the call's worst case — its input estimate and the output it may have, priced — against
 * the account's limits, atomically for the account (runyard_reserve_spend, under the account's
 * transaction lock): what the period consumed plus what other calls hold decides how much output this
 * call may have, and the call is sent with that cap. The run's reservations go once its calls are
 * charged (at its next reservation, and when its attempt ends), or when their lease ends (a worker
 * that died). So recorded consumption passes a limit by at most one call's real usage over its
 * estimate, whatever the concurrency.
 */

/** The output a call of an account with limits may have when its run names no maxOutputTokens. */
export const RESERVED_OUTPUT_TOKENS = 4_096;

const RESERVE = statement(
  'reserve_spend',
  `SELECT runyard_reserve_spend($1::uuid, $2::uuid, $3::bigint, $4::bigint, $5::bigint, $6::bigint, $7::int) AS reservation`,
);
const RELEASE = statement('release_spend', `DELETE FROM spend_reservations WHERE run_id = $1::uuid`);

export type Reservation = { reserved: true; maxOutputTokens: number } | { reserved: false; held: boolean; reached: LimitReached };

const picoPerToken = (usdPerMTok: number | undefined) => BigInt(Math.round((usdPerMTok ?? 0) * 1_000_000));

export async function reserveSpend(
  sql: Sql,
  call: { accountId: string; runId: string; model: string; inputTokens: number; maxOutputTokens: number | null; leaseMs: number },
): Promise<Reservation> {
  const price = priceOf(call.model);
  const [row] = await sql.rows<{ reservation: Reservation }>(RESERVE, [
    call.accountId,
    call.runId,
    Math.ceil(call.inputTokens),
    call.maxOutputTokens ?? RESERVED_OUTPUT_TOKENS,
    String(picoPerToken(price?.input)),
    String(picoPerToken(price?.output)),
    call.leaseMs,
  ]);
  return row!.reservation;
}

/** The run's calls are charged: what they held goes back. */
export async function releaseSpend(sql: Sql, runId: string): Promise<void> {
  await sql.rows(RELEASE, [runId]);
}

/** Reservations whose worker died with them: their lease is over (the sweep). */
export async function dropLapsedReservations(db: Pick<Db, '$executeRaw'>): Promise<void> {
  await db.$executeRaw`DELETE FROM spend_reservations WHERE expires_at < now()`;
}
