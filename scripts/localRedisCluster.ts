import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { pathToFileURL } from 'node:url';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';

const run = promisify(execFile);

async function waitFor(probe: () => Promise<boolean>, opts: { what: string; timeoutMs: number; intervalMs?: number }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${opts.what}`);
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 50));
  }
}

type ClusterNode = { port: number; process: ChildProcess; stopped: Promise<void> };
export type ClusterMember = { id: string; port: number; role: 'master' | 'replica'; masterId: string | null; slots: [number, number][]; failed: boolean };

/**
 * A real Redis Cluster on loopback, for the tests, the bench (`--cluster`) and trying runyard on a
 * cluster by hand (`npm run redis-cluster`): 3 masters and 3 replicas (`redis-server --cluster-enabled yes`
 * on ports the OS handed out, joined by `redis-cli --cluster create`), with a node timeout short
 * enough for a failover to happen within a test. `nodes` is what REDIS_CLUSTER_NODES takes.
 */
export type LocalRedisCluster = {
  nodes: string;
  /** The cluster's view of itself, from a node that is up. */
  members: () => Promise<ClusterMember[]>;
  /** A direct connection to one node (closed with the cluster). */
  node: (port: number) => Redis;
  /** The process id of the node on `port`. */
  pid: (port: number) => number;
  /** kill -9 of one node; resolves once the process is gone. */
  kill: (port: number) => Promise<void>;
  /** Until every slot is served by a master that is up and every node agrees the cluster is ok. */
  waitHealthy: (timeoutMs?: number) => Promise<void>;
  close: () => Promise<void>;
};

/** `count` ports the OS had free, held together so none is handed out twice. */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  for (let i = 0; i < count; i++) {
    servers.push(
      await new Promise<Server>((resolve) => {
        const server = createServer().listen(0, '127.0.0.1', () => resolve(server));
      }),
    );
  }
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

export async function startRedisCluster(opts: { nodeTimeoutMs?: number } = {}): Promise<LocalRedisCluster> {
  const dir = await mkdtemp(path.join(tmpdir(), 'runyard-cluster-'));
  const ports = await freePorts(12); // 6 client ports, 6 cluster-bus ports
  const clientPorts = ports.slice(0, 6);
  const processes = new Map<number, ClusterNode>();
  const connections: Redis[] = [];
  for (const [i, port] of clientPorts.entries()) {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--cluster-port',
        String(ports[6 + i]),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        String(opts.nodeTimeoutMs ?? 2_000),
        // A replica takes over however long it was cut off: the test kills masters on purpose.
        '--cluster-replica-validity-factor',
        '0',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
      ],
      { stdio: 'ignore' },
    );
    const stopped = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    processes.set(port, { port, process: child, stopped });
  }
  const node = (port: number) => {
    const connection = new Redis({ port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 1, retryStrategy: () => 200 });
    connection.on('error', () => {});
    connections.push(connection);
    return connection;
  };
  const probes = new Map(clientPorts.map((port) => [port, node(port)]));
  const close = async () => {
    for (const connection of connections) connection.disconnect();
    for (const { process: child, stopped } of processes.values()) {
      child.kill('SIGKILL');
      await stopped;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => (await Promise.all([...probes.values()].map((p) => p.ping().catch(() => null)))).every((pong) => pong === 'PONG'), {
      what: 'six redis-server processes',
      timeoutMs: 20_000,
    });
    await run('redis-cli', ['--cluster', 'create', ...clientPorts.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '1', '--cluster-yes']);

    const alivePorts = () => clientPorts.filter((port) => processes.get(port)!.process.exitCode === null && processes.get(port)!.process.signalCode === null);
    const members = async (): Promise<ClusterMember[]> => {
      for (const port of alivePorts()) {
        const text = (await probes
          .get(port)!
          .call('CLUSTER', 'NODES')
          .catch(() => null)) as string | null;
        if (text) return parseClusterNodes(text);
      }
      throw new Error('no cluster node answers');
    };
    const waitHealthy = async (timeoutMs = 30_000) => {
      await waitFor(
        async () => {
          const states = await Promise.all(
            alivePorts().map((port) =>
              probes
                .get(port)!
                .call('CLUSTER', 'INFO')
                .catch(() => ''),
            ),
          );
          if (!states.every((info) => /cluster_state:ok/.test(String(info)) && /cluster_slots_ok:16384/.test(String(info)))) return false;
          const masters = (await members()).filter((m) => m.role === 'master' && !m.failed && m.slots.length > 0);
          return masters.reduce((sum, m) => sum + m.slots.reduce((n, [a, b]) => n + b - a + 1, 0), 0) === 16_384;
        },
        { what: 'the Redis Cluster to be ok', timeoutMs, intervalMs: 200 },
      );
    };
    await waitHealthy();
    await waitFor(async () => (await members()).filter((m) => m.role === 'replica').length === 3, {
      what: 'three replicas',
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    return {
      nodes: clientPorts.map((port) => `127.0.0.1:${port}`).join(','),
      members,
      node,
      pid: (port) => processes.get(port)!.process.pid!,
      kill: async (port) => {
        const target = processes.get(port)!;
        target.process.kill('SIGKILL');
        await target.stopped;
      },
      waitHealthy,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** `CLUSTER NODES`: id, address, flags, master id and the slot ranges of each node. */
export function parseClusterNodes(text: string): ClusterMember[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, address, flags, masterId, , , , , ...slots] = line.trim().split(' ');
      const port = Number(address!.split('@')[0]!.split(':').pop());
      return {
        id: id!,
        port,
        role: flags!.includes('master') ? 'master' : 'replica',
        masterId: masterId === '-' ? null : masterId!,
        failed: /fail/.test(flags!),
        slots: slots
          .filter((range) => !range.startsWith('['))
          .map((range) => {
            const [from, to] = range.split('-').map(Number);
            return [from!, to ?? from!] as [number, number];
          }),
      } satisfies ClusterMember;
    });
}

// `npm run redis-cluster`: a local cluster until Ctrl-C, for trying runyard on a cluster by hand.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const cluster = await startRedisCluster({ nodeTimeoutMs: 5_000 });
  const masters = (await cluster.members()).filter((m) => m.role === 'master');
  console.log(`Redis Cluster up: ${masters.length} masters, ${6 - masters.length} replicas.`);
  console.log(`REDIS_CLUSTER_NODES=${cluster.nodes}`);
  console.log('Ctrl-C stops it and deletes its data.');
  const stop = () => void cluster.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

/** The master that serves `key`'s slot. */
export function masterServing(members: ClusterMember[], key: string): ClusterMember {
  const slot = calculateSlot(key);
  const master = members.find((m) => m.role === 'master' && !m.failed && m.slots.some(([from, to]) => slot >= from && slot <= to));
  if (!master) throw new Error(`no master serves slot ${slot}`);
  return master;
}
