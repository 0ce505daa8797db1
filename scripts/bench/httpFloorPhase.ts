import { spawnTs } from './processes.js';
import { cpuMsPerItem, cpuSnapshot } from './cpu.js';
import { N } from './options.js';
import { freePort } from './support.js';
import { apiClient, postAsFastAsTheyGo } from './apiClient.js';

/** Phase 1b: the HTTP floor — the api's express stack answering POSTs with nothing behind them. */

/**
 * Phase 1b: the HTTP floor — express with the api's helmet and body parsing answering the same
 * POSTs from the same client with 202 and nothing else. CPU ms per POST, by kind.
 */
export async function httpFloor(): Promise<Record<string, number>> {
  const port = await freePort();
  const server = spawnTs('scripts/bench/httpFloor.ts', [String(port)], {}, 'ready');
  try {
    await server.ready;
    const client = apiClient(`http://127.0.0.1:${port}`, 'floor');
    await postAsFastAsTheyGo(client, 5000); // warm-up: a cold express costs twice as much per POST
    const own = [
      { pid: process.pid, kind: 'bench' },
      { pid: server.child.pid!, kind: 'api' },
    ];
    const before = await cpuSnapshot(own);
    await postAsFastAsTheyGo(client, N);
    const after = await cpuSnapshot(own);
    client.close();
    return cpuMsPerItem(before, after, N);
  } finally {
    await server.stop();
  }
}
