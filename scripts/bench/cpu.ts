import { readdir, readFile } from 'node:fs/promises';

/**
 * CPU time by kind of process, read from /proc (Linux only; elsewhere every figure is absent): the
 * bench's own api and worker processes by pid, and the local Postgres and Redis servers by name
 * (every Postgres backend counts, so nothing else should use that server during a measurement).
 */
export type CpuSnapshot = Map<number, { kind: string; ms: number }>;

const SERVERS: Record<string, string> = { postgres: 'postgres', 'redis-server': 'redis' };
const CLOCK_TICKS_PER_SECOND = 100;

export async function cpuMsOf(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

export async function cpuSnapshot(own: { pid: number; kind: string }[]): Promise<CpuSnapshot> {
  const snapshot: CpuSnapshot = new Map();
  for (const { pid, kind } of own) {
    const ms = await cpuMsOf(pid);
    if (ms !== undefined) snapshot.set(pid, { kind, ms });
  }
  const pids = await readdir('/proc').catch(() => [] as string[]);
  for (const name of pids) {
    if (!/^\d+$/.test(name)) continue;
    const comm = (await readFile(`/proc/${name}/comm`, 'utf8').catch(() => '')).trim();
    const kind = SERVERS[comm];
    if (!kind) continue;
    const ms = await cpuMsOf(Number(name));
    if (ms !== undefined) snapshot.set(Number(name), { kind, ms });
  }
  return snapshot;
}

/**
 * CPU milliseconds per item of work between two snapshots, by kind. A process that ended in
 * between is not counted; one that started in between counts from zero.
 */
export function cpuMsPerItem(before: CpuSnapshot, after: CpuSnapshot, items: number): Record<string, number> {
  const totals: Record<string, number> = {};
  for (const [pid, { kind, ms }] of after) {
    totals[kind] = (totals[kind] ?? 0) + ms - (before.get(pid)?.ms ?? 0);
  }
  return Object.fromEntries(Object.entries(totals).map(([kind, ms]) => [kind, Math.round((ms / items) * 1000) / 1000]));
}
