import { setTimeout as sleep } from 'node:timers/promises';
import { createAccountKey } from '../../shared/accounts/apiKeys.js';
import type { Db } from '../../shared/infra/db.js';
import { cpuMsPerItem, cpuSnapshot } from './cpu.js';
import { PROMPT } from './options.js';
import { round } from './stats.js';

/**
 * Long chats (SPEC section 13): `chats` chats of `turns` turns each, all chats advancing one turn
 * at a time, twice in the same run — once for an account whose chats are never compacted (the
 * baseline: a threshold of 100 % of local/echo's window, which 50 turns never reach) and once for
 * an account compacted at `compactAtPercent` of it. Per band of turns: provider input tokens per run
 * (compactions' included) and CPU per run of the api, workers, Postgres and Redis. Without
 * compaction both grow with the chat; with it they must stay flat.
 */

export type LongChatBand = { turns: string; inputTokensPerRun: number; cpuMsPerRun: number };
export type LongChatsResult = {
  chats: number;
  turns: number;
  windowTokens: number;
  compactAtPercent: number;
  plain: LongChatBand[];
  compacted: LongChatBand[];
  compactions: number;
};

const BANDS = 5;

export async function longChatsPhase(
  base: string,
  db: Db,
  processes: { pid: number; kind: string }[],
  opts: { chats: number; turns: number; windowTokens: number; compactAtPercent: number },
): Promise<LongChatsResult> {
  const plain = await driveChats(base, db, processes, opts, 100);
  const compactedAccount = await driveChats(base, db, processes, opts, opts.compactAtPercent);
  const compactions = await db.chatCompaction.count({ where: { run: { accountId: compactedAccount.accountId } } });
  return { ...opts, plain: plain.bands, compacted: compactedAccount.bands, compactions };
}

async function driveChats(
  base: string,
  db: Db,
  processes: { pid: number; kind: string }[],
  opts: { chats: number; turns: number },
  thresholdPercent: number,
): Promise<{ accountId: string; bands: LongChatBand[] }> {
  const { rawKey, accountId } = await createAccountKey(db, `bench-long-chats-${thresholdPercent}-${Date.now()}`);
  await db.account.update({ where: { id: accountId }, data: { compactionThresholdPercent: thresholdPercent } });
  const headers = { authorization: `Bearer ${rawKey}`, 'content-type': 'application/json' };
  const post = async (path: string, body: unknown) => {
    const res = await fetch(new URL(path, base), { method: 'POST', headers, body: JSON.stringify(body) });
    const json = (await res.json()) as { runId: string; chatId: string };
    if (res.status !== 202) throw new Error(`${path} answered ${res.status}: ${JSON.stringify(json)}`);
    return json;
  };
  const chatIds: string[] = [];
  const bandSize = Math.max(1, Math.ceil(opts.turns / BANDS));
  const bands: LongChatBand[] = [];
  let band: { runIds: string[]; cpu: Awaited<ReturnType<typeof cpuSnapshot>>; from: number } | null = null;
  for (let turn = 0; turn < opts.turns; turn++) {
    if (turn % bandSize === 0) band = { runIds: [], cpu: await cpuSnapshot(processes), from: turn + 1 };
    const prompt = `turn ${turn} ${PROMPT}`;
    const started =
      turn === 0
        ? await Promise.all(Array.from({ length: opts.chats }, () => post('/api/chat/runs', { prompt })))
        : await Promise.all(chatIds.map((chatId) => post(`/api/chats/${chatId}/messages`, { prompt })));
    if (turn === 0) chatIds.push(...started.map((s) => s.chatId));
    const runIds = started.map((s) => s.runId);
    await waitForEnd(db, runIds);
    band!.runIds.push(...runIds);
    if ((turn + 1) % bandSize === 0 || turn === opts.turns - 1) {
      const cpu = cpuMsPerItem(band!.cpu, await cpuSnapshot(processes), band!.runIds.length);
      const [{ input }] = (await db.$queryRaw<{ input: number }[]>`
        SELECT avg((usage->>'inputTokens')::int)::float8 AS input FROM runs WHERE id = ANY(${band!.runIds}::uuid[])`) as [{ input: number }];
      bands.push({
        turns: `${band!.from}–${turn + 1}`,
        inputTokensPerRun: round(input, 0),
        cpuMsPerRun: round((cpu.api ?? 0) + (cpu.workers ?? 0) + (cpu.postgres ?? 0) + (cpu.redis ?? 0), 3),
      });
    }
  }
  return { accountId, bands };
}

async function waitForEnd(db: Db, runIds: string[]): Promise<void> {
  for (;;) {
    const [{ ended, failed }] = (await db.$queryRaw<{ ended: number; failed: number }[]>`
      SELECT count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled'))::int AS ended, count(*) FILTER (WHERE status = 'failed')::int AS failed
      FROM runs WHERE id = ANY(${runIds}::uuid[])`) as [{ ended: number; failed: number }];
    if (failed > 0) throw new Error(`${failed} long-chat runs failed`);
    if (ended === runIds.length) return;
    await sleep(20);
  }
}
