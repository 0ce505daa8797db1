import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';

/**
 * Summarises the V8 CPU profiles `npm run bench -- --profile` writes (bench-profiles/*.cpuprofile):
 * self time by package (or project file) and the hottest functions. Usage: node --import tsx
 * scripts/bench/profileSummary.ts [dir]
 */
type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number };
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[] };

function owner(url: string): string {
  if (!url) return '(native/gc)';
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (match) return match[1]!;
  if (url.startsWith('node:')) return url;
  return path.relative(process.cwd(), url.replace('file://', ''));
}

const dir = process.argv[2] ?? 'bench-profiles';
for (const file of (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort()) {
  const profile = JSON.parse(await readFile(path.join(dir, file), 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const total = [...selfMs.values()].reduce((a, b) => a + b, 0);
  const byOwner = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, ms] of selfMs) {
    const frame = byId.get(id)!.callFrame;
    if (frame.functionName === '(idle)' || frame.functionName === '(program)') continue;
    byOwner.set(owner(frame.url), (byOwner.get(owner(frame.url)) ?? 0) + ms);
    const key = `${frame.functionName || '(anonymous)'} ${owner(frame.url)}:${frame.lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + ms);
  }
  const busy = [...byOwner.values()].reduce((a, b) => a + b, 0);
  const top = (map: Map<string, number>, n: number) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, ms]) => `  ${((100 * ms) / busy).toFixed(1).padStart(5)}%  ${k}`)
      .join('\n');
  console.log(
    `\n${file}: ${(busy / 1000).toFixed(1)} s busy of ${(total / 1000).toFixed(1)} s sampled\nby package:\n${top(byOwner, 12)}\nhottest functions:\n${top(byFunction, 15)}`,
  );
}
