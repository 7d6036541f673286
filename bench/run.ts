/**
 * `npm run bench [-- name...]`: runs the benchmarks in one process and prints one table each.
 * Heap figures need gc: `node --expose-gc --import tsx bench/run.ts`; without the flag, stats.ts
 * enables it at run time.
 */
import { cpus } from 'node:os';
import { gcSource } from './stats.js';

type Benchmark = () => Promise<{ run: () => Promise<void> }>;

const BENCHMARKS: Record<string, Benchmark> = {
  frames: () => import('./frames.js'),
  fanout: () => import('./fanout.js'),
  idle: () => import('./idle-cost.js'),
  latency: () => import('./latency.js'),
  batch: () => import('./batch.js'),
  size: () => import('./size.js'),
  scale: () => import('./scale.js'),
  bridge: () => import('./bridge-connections.js'),
  workers: () => import('./workers.js'),
  tokens: () => import('./tokens.js'),
  resumable: () => import('./resumable.js'),
  paths: () => import('./paths.js'),
  cluster: () => import('./cluster.js'),
  processes: () => import('./processes.js'),
};

/**
 * Only when named: scale takes ~10 minutes and dozens of thousands of sockets; workers ~6 minutes
 * and two workerd processes; paths ~4 minutes, under Bun and Deno too; processes ~7 minutes and
 * 10,000 sockets.
 */
const ONLY_WHEN_NAMED = new Set(['scale', 'workers', 'paths', 'processes']);

function selected(args: readonly string[]): string[] {
  const names = args.filter((arg) => !arg.startsWith('-'));
  const unknown = names.filter((name) => !(name in BENCHMARKS));
  if (unknown.length > 0) {
    throw new Error(`Unknown benchmark(s): ${unknown.join(', ')}. Available: ${Object.keys(BENCHMARKS).join(', ')}`);
  }
  return names.length > 0 ? names : Object.keys(BENCHMARKS).filter((name) => !ONLY_WHEN_NAMED.has(name));
}

async function main(): Promise<void> {
  const names = selected(process.argv.slice(2));
  console.log(
    `edge-sse benchmarks — ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ` +
      `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, gc: ${gcSource === 'none' ? 'unavailable (no heap figures)' : gcSource}`,
  );
  for (const name of names) {
    const started = performance.now();
    await (await BENCHMARKS[name]!()).run();
    console.log(`\n(${name}: ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
