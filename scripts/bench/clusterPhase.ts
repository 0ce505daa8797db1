import type { LocalRedisCluster } from '../localRedisCluster.js';
import { cpuMsOf } from './cpu.js';

export type MasterShare = { port: number; calls: number; share: number; redisCpuMsPerRun: number };
export type ClusterFigures = { masters: MasterShare[]; mostToLeastCommands: number };

/** Every command a node ran since its stats were reset, from `INFO commandstats`. */
async function commandCalls(cluster: LocalRedisCluster, port: number): Promise<number> {
  const info = await cluster.node(port).info('commandstats');
  return [...info.matchAll(/calls=(\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0);
}

/**
 * Runs `work` (which reports how many runs it did) and measures what each master of the cluster
 * did meanwhile: its Redis CPU per run and its share of the commands.
 */
export async function measureMasters(cluster: LocalRedisCluster, work: () => Promise<number>): Promise<ClusterFigures> {
  const masters = (await cluster.members()).filter((m) => m.role === 'master' && !m.failed && m.slots.length > 0);
  await Promise.all(masters.map((m) => cluster.node(m.port).config('RESETSTAT')));
  const cpuBefore = await Promise.all(masters.map((m) => cpuMsOf(cluster.pid(m.port))));
  const runs = await work();
  const cpuAfter = await Promise.all(masters.map((m) => cpuMsOf(cluster.pid(m.port))));
  const calls = await Promise.all(masters.map((m) => commandCalls(cluster, m.port)));
  const total = calls.reduce((a, b) => a + b, 0);
  const figures = masters.map((m, i) => ({
    port: m.port,
    calls: calls[i]!,
    share: Math.round((calls[i]! / total) * 1000) / 1000,
    redisCpuMsPerRun: Math.round((((cpuAfter[i] ?? 0) - (cpuBefore[i] ?? 0)) / runs) * 1000) / 1000,
  }));
  return { masters: figures, mostToLeastCommands: Math.round((Math.max(...calls) / Math.min(...calls)) * 100) / 100 };
}
