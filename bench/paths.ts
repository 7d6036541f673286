/**
 * Paths: what a delivered event and an idle connection cost along each way edge-sse reaches a
 * socket. One server process per contender (`paths-server.ts`, under Node, Bun or Deno) and the
 * raw-socket client process of the scale benchmark (`scale-client.ts`), both driven from here.
 *
 * Per contender: open 1,000 connections, 10 warm-up broadcasts, heap and RSS per connection after
 * GC (minus the server's before it had any), then 200 broadcasts, each awaited at every
 * connection, and the server process's CPU time over them (user + system, all threads, from
 * /proc) per 100,000 delivered events. Rounds in fresh processes, the order reversed every other
 * round, so that a noisy stretch of this shared machine does not fall on one contender only.
 *
 * `BENCH_PATHS_ROUNDS` (default 3), `BENCH_PATHS_CONNECTIONS` (1000), `BENCH_PATHS_BROADCASTS`
 * (200), `BENCH_PATHS_ONLY` (a comma-separated subset of contenders), `BENCH_PATHS_NODE_ARGS` (extra
 * flags for the Node servers, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`), `BENCH_PATHS_BASELINE` (the
 * absolute path of another build's dist/: every edge-sse contender runs on it too, "· baseline", in
 * the same rounds, for a before/after of a change).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Broadcast,
  type CpuTimes,
  ROOT,
  broadcast,
  cpuSince,
  cpuTimes,
  here,
  open,
  spawnWithIpc,
  startClient,
  startServerProcess,
} from './children.js';
import type { Memory, PathsContender } from './scale-protocol.js';
import { max, median, percentile } from './stats.js';
import { type Cell, formatBytes, formatMs, formatNumber, formatRatio, printTable } from './table.js';

const CONTENDERS: PathsContender[] = [
  'socket floor',
  'web-stream floor (@hono/node-server)',
  'edge-sse/node direct',
  'edge-sse @hono/node-server',
  'edge-sse Readable.fromWeb',
  'edge-sse Bun.serve',
  'edge-sse Deno.serve',
  'better-sse',
];
const ROUNDS = Number(process.env.BENCH_PATHS_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_PATHS_CONNECTIONS ?? 1000);
const BROADCASTS = Number(process.env.BENCH_PATHS_BROADCASTS ?? 200);
const WARM_UPS = 10;
const DIRECT: PathsContender = 'edge-sse/node direct';
const FLOOR: PathsContender = 'socket floor';
/** The generic Node paths, held to the goal against the direct one. */
const GENERIC: PathsContender[] = ['edge-sse @hono/node-server', 'edge-sse Readable.fromWeb'];
const CPU_GOAL = 1.15;
const HEAP_GOAL = 10 * 1024;

const DENO = join(ROOT, 'node_modules', '@deno', 'linux-x64-glibc', 'deno');
const BUN = join(ROOT, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun');

/** A contender, on this build or on the baseline one. */
interface Entry {
  label: string;
  contender: PathsContender;
  dist?: string;
}

const BASELINE = process.env.BENCH_PATHS_BASELINE;

function entries(contenders: PathsContender[]): Entry[] {
  return contenders.flatMap((contender) => {
    const current: Entry = { label: contender, contender };
    if (!BASELINE || !contender.startsWith('edge-sse')) return [current];
    return [current, { label: `${contender} · baseline`, contender, dist: BASELINE }];
  });
}

interface Sample {
  label: string;
  round: number;
  heapPerConnection: number;
  rssPerConnection: number;
  /** The same for connections 1,001 to 2,000. */
  marginalHeap: number;
  marginalRss: number;
  /** CPU ms per 100,000 delivered events: every thread, and how it splits. */
  cpuPer100k: number;
  cpu: CpuTimes;
  delivered: number;
  broadcasts: Broadcast[];
}

/** The server's process, under the runtime its path needs; nothing downloads (see test/runtimes/runtimes.ts). */
function spawnServer({ contender, dist }: Entry): { child: ReturnType<typeof spawnWithIpc>; cleanUp(): void } {
  const script = here('paths-server.ts');
  const config = JSON.stringify({ contender, dist });
  if (contender === 'edge-sse Bun.serve') {
    return { child: spawnWithIpc(BUN, ['--no-install', script, config], { ...process.env, DO_NOT_TRACK: '1' }), cleanUp() {} };
  }
  if (contender === 'edge-sse Deno.serve') {
    const cache = mkdtempSync(join(tmpdir(), 'edge-sse-bench-deno-'));
    const args = ['run', '--no-remote', '--cached-only', '--node-modules-dir=manual', '--no-config', '--no-lock'];
    args.push('--allow-net=127.0.0.1', '--allow-env', '--allow-read', '--v8-flags=--expose-gc', script, config);
    const env = { ...process.env, DENO_DIR: cache, DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1' };
    return { child: spawnWithIpc(DENO, args, env), cleanUp: () => rmSync(cache, { recursive: true, force: true }) };
  }
  const nodeArgs = process.env.BENCH_PATHS_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  return { child: spawnWithIpc(process.execPath, [...nodeArgs, '--expose-gc', '--import', 'tsx', script, config]), cleanUp() {} };
}

function perConnection(before: Memory, after: Memory, count: number): { heap: number; rss: number } {
  return { heap: (after.heapUsed - before.heapUsed) / count, rss: (after.rss - before.rss) / count };
}

async function measure(entry: Entry, round: number, addressIndex: number): Promise<Sample> {
  const { label: contender } = entry;
  const { child, cleanUp } = spawnServer(entry);
  const { server, port, path } = await startServerProcess(contender, child);
  const client = await startClient();
  const sources = [`127.0.0.${20 + 2 * addressIndex}`, `127.0.0.${21 + 2 * addressIndex}`];
  try {
    const baseline = await server.call<'memory'>({ type: 'memory' });
    const opened = await open(client, port, path, CONNECTIONS, sources);
    if (opened.failed > 0) throw new Error(`${contender}: ${opened.failed} of ${CONNECTIONS} connections failed`);
    let held = 0;
    for (let warm = 0; warm < WARM_UPS; warm++) held = (await broadcast(server, client)).delivered;
    if (held < CONNECTIONS) throw new Error(`${contender}: ${held} of ${CONNECTIONS} connections got the warm-up broadcasts`);
    const loaded = await server.call<'memory'>({ type: 'memory' });
    const { heap, rss } = perConnection(baseline, loaded, held);
    const cpuBefore = cpuTimes(child.pid!);
    const broadcasts: Broadcast[] = [];
    for (let index = 0; index < BROADCASTS; index++) broadcasts.push(await broadcast(server, client));
    const cpu = cpuSince(cpuBefore, cpuTimes(child.pid!));
    const delivered = broadcasts.reduce((sum, b) => sum + b.delivered, 0);
    const cpuPer100k = (cpu.total * 100_000) / delivered;
    // As many again: what one more idle connection costs, without what the first ones paid once
    // (code compiled, shapes created on first use).
    const more = await open(client, port, path, CONNECTIONS, sources);
    let heldMore = 0;
    for (let warm = 0; warm < 2; warm++) heldMore = (await broadcast(server, client)).delivered - held;
    if (more.failed > 0 || heldMore < CONNECTIONS) throw new Error(`${contender}: ${heldMore} of ${CONNECTIONS} more connections held`);
    const marginal = perConnection(loaded, await server.call<'memory'>({ type: 'memory' }), heldMore);
    return {
      label: contender,
      round,
      heapPerConnection: heap,
      rssPerConnection: rss,
      marginalHeap: marginal.heap,
      marginalRss: marginal.rss,
      cpuPer100k,
      cpu,
      delivered,
      broadcasts,
    };
  } finally {
    await client.stop();
    await server.stop();
    cleanUp();
  }
}

interface Summary {
  label: string;
  cpu: number;
  /** Per 100k delivered events, ms: user and system time, and the JavaScript thread's. */
  user: number;
  system: number;
  mainThread: number;
  cpuMin: number;
  cpuMax: number;
  heap: number;
  rss: number;
  marginalHeap: number;
  marginalRss: number;
  p50: number;
  last: number;
}

function summarise(label: string, samples: Sample[]): Summary {
  const own = samples.filter((sample) => sample.label === label);
  const cpus = own.map((sample) => sample.cpuPer100k);
  const broadcasts = own.flatMap((sample) => sample.broadcasts);
  const per100k = (key: keyof CpuTimes) => median(own.map((sample) => (sample.cpu[key] * 100_000) / sample.delivered));
  return {
    label,
    cpu: median(cpus),
    user: per100k('user'),
    system: per100k('system'),
    mainThread: per100k('mainThread'),
    cpuMin: Math.min(...cpus),
    cpuMax: Math.max(...cpus),
    heap: median(own.map((sample) => sample.heapPerConnection)),
    rss: median(own.map((sample) => sample.rssPerConnection)),
    marginalHeap: median(own.map((sample) => sample.marginalHeap)),
    marginalRss: median(own.map((sample) => sample.marginalRss)),
    p50: median(broadcasts.map((b) => percentile(b.latencies, 50))),
    last: median(broadcasts.map((b) => max(b.latencies))),
  };
}

/** Ratios within each round first (the same stretch of machine), then their median. */
function pairedRatio(samples: Sample[], label: string, reference: string): number {
  const ratios = samples
    .filter((mine) => mine.label === label)
    .flatMap((mine) => {
      const theirs = samples.find((sample) => sample.label === reference && sample.round === mine.round);
      return theirs ? [mine.cpuPer100k / theirs.cpuPer100k] : [];
    });
  return median(ratios);
}

function print(samples: Sample[], runs: Entry[]): void {
  const summaries = runs.map(({ label }) => summarise(label, samples)).filter((s) => Number.isFinite(s.cpu));
  const ms = (value: number) => `${(value / 1000).toFixed(2)} s`;
  const rows: Cell[][] = summaries.map((s) => [
    s.label,
    ms(s.cpu),
    `${ms(s.cpuMin)}–${ms(s.cpuMax)}`,
    formatRatio(pairedRatio(samples, s.label, DIRECT)),
    formatRatio(pairedRatio(samples, s.label, FLOOR)),
    ...(BASELINE ? [formatRatio(pairedRatio(samples, s.label, `${s.label} · baseline`))] : []),
    ms(s.user),
    ms(s.system),
    ms(s.mainThread),
    formatBytes(s.heap),
    formatBytes(s.marginalHeap),
    formatBytes(s.rss),
    formatBytes(s.marginalRss),
    formatMs(s.p50),
    formatMs(s.last),
  ]);
  printTable(
    `Paths: ${formatNumber(CONNECTIONS)} connections, ${BROADCASTS} broadcasts awaited one by one, memory backend, ` +
      `${ROUNDS} round(s) in fresh processes (median; CPU = server process, all threads)`,
    ['server', 'CPU / 100k events', 'min–max', '÷ direct', '÷ floor', ...(BASELINE ? ['÷ baseline'] : []), 'user', 'system', 'JS thread', 'heap/conn', 'marginal', 'RSS/conn', 'marginal', 'p50', 'last'],
    rows,
  );
  console.log(
    '\n÷ direct, ÷ floor: the median of the per-round ratios. user, system: the CPU time split; JS thread: the part of the ' +
      'main thread (the rest is GC helpers, libuv and the runtime\'s own threads). heap/conn: after GC, minus the server before any connection ' +
      '(Bun: JavaScriptCore\'s heap, not V8\'s). p50, last: publish → read in the client process, median over broadcasts.',
  );
  for (const contender of GENERIC) {
    const summary = summaries.find((s) => s.label === contender);
    if (!summary) continue;
    const cpuRatio = pairedRatio(samples, contender, DIRECT);
    const met = cpuRatio <= CPU_GOAL && summary.heap <= HEAP_GOAL;
    console.log(
      `Goal: ${contender} CPU ≤ ×${CPU_GOAL} the direct path's and heap ≤ ${formatBytes(HEAP_GOAL)}/conn: ` +
        `${formatRatio(cpuRatio)}, ${formatBytes(summary.heap)} → ${met ? 'MET' : 'MISSED'}`,
    );
  }
}

export async function run(): Promise<void> {
  const only = process.env.BENCH_PATHS_ONLY?.split(',').map((name) => name.trim());
  const runs = entries(CONTENDERS.filter((contender) => !only || only.includes(contender)));
  const samples: Sample[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? runs : [...runs].reverse();
    for (const [index, entry] of order.entries()) {
      console.error(`paths round ${round + 1}: ${entry.label}…`);
      const addressIndex = (round % 2) * runs.length + index;
      await measure(entry, round, addressIndex).then(
        (sample) => samples.push(sample),
        (error: Error) => console.error(`  ${entry.label}: ${error.message}`),
      );
    }
  }
  print(samples, runs);
}
