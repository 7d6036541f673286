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
 * the same rounds, for a before/after of a change), `BENCH_PATHS_NODE` (the Node binary the Node
 * servers run under; this driver and the client stay on the Node that runs them) or
 * `BENCH_PATHS_NODES=20:/path/node,22:/path/node` (every Node contender once per binary in the same
 * rounds, "· node 22", its ratios taken against the direct path and the floor on that same binary).
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
/** The contenders that bring their own runtime; every other one runs under Node. */
const OWN_RUNTIME: PathsContender[] = ['edge-sse Bun.serve', 'edge-sse Deno.serve'];

/** A Node binary for the servers; `name` (from `BENCH_PATHS_NODES`) labels its rows. */
interface NodeBinary {
  name?: string;
  path: string;
}

function nodeBinaries(): NodeBinary[] {
  const list = process.env.BENCH_PATHS_NODES;
  if (!list) return [{ path: process.env.BENCH_PATHS_NODE ?? process.execPath }];
  return list.split(',').map((item) => {
    const colon = item.indexOf(':');
    if (colon <= 0) throw new Error(`BENCH_PATHS_NODES: "${item}" is not name:/path/to/node`);
    return { name: item.slice(0, colon).trim(), path: item.slice(colon + 1).trim() };
  });
}

const NODES = nodeBinaries();

/** A contender, on this build or on the baseline one, under one of the Node binaries (none: Bun, Deno). */
interface Entry {
  label: string;
  contender: PathsContender;
  node?: NodeBinary;
  dist?: string;
}

const BASELINE = process.env.BENCH_PATHS_BASELINE;

function labelOf(contender: PathsContender, node?: NodeBinary, baseline = false): string {
  return `${contender}${node?.name ? ` · node ${node.name}` : ''}${baseline ? ' · baseline' : ''}`;
}

/** Node binary by Node binary, then Bun and Deno; each edge-sse contender also on the baseline build. */
function entries(contenders: PathsContender[]): Entry[] {
  const builds = (contender: PathsContender, node?: NodeBinary): Entry[] => {
    const current: Entry = { label: labelOf(contender, node), contender, node };
    if (!BASELINE || !contender.startsWith('edge-sse')) return [current];
    return [current, { label: labelOf(contender, node, true), contender, node, dist: BASELINE }];
  };
  const onNode = contenders.filter((contender) => !OWN_RUNTIME.includes(contender));
  const elsewhere = contenders.filter((contender) => OWN_RUNTIME.includes(contender));
  return [
    ...NODES.flatMap((node) => onNode.flatMap((contender) => builds(contender, node))),
    ...elsewhere.flatMap((contender) => builds(contender)),
  ];
}

/** What an entry is compared with: `reference` on the same Node binary (Bun and Deno: the first one), this build. */
const referenceOf = (entry: Entry, reference: PathsContender) => labelOf(reference, entry.node ?? NODES[0]);

interface Sample {
  label: string;
  round: number;
  /** As the server process reported it, e.g. `node v22.23.5`. */
  runtime: string;
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
function spawnServer({ contender, dist, node }: Entry): { child: ReturnType<typeof spawnWithIpc>; cleanUp(): void } {
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
  const binary = node?.path ?? process.execPath;
  return { child: spawnWithIpc(binary, [...nodeArgs, '--expose-gc', '--import', 'tsx', script, config]), cleanUp() {} };
}

function perConnection(before: Memory, after: Memory, count: number): { heap: number; rss: number } {
  return { heap: (after.heapUsed - before.heapUsed) / count, rss: (after.rss - before.rss) / count };
}

async function measure(entry: Entry, round: number, addressIndex: number): Promise<Sample> {
  const { label: contender } = entry;
  const { child, cleanUp } = spawnServer(entry);
  console.error(`  server pid ${child.pid}`);
  const { server, port, path, runtime = 'unknown' } = await startServerProcess(contender, child);
  const client = await startClient();
  const octet = 20 + ((2 * addressIndex) % 230);
  const sources = [`127.0.0.${octet}`, `127.0.0.${octet + 1}`];
  try {
    checkRuntime(entry, runtime);
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
      runtime,
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

/** A binary named after a major version ("22") must report that version: a wrong path would mislabel every row. */
function checkRuntime({ node }: Entry, runtime: string): void {
  if (node?.name && /^\d+$/.test(node.name) && !runtime.startsWith(`node v${node.name}.`)) {
    throw new Error(`${node.path} runs ${runtime}, not node ${node.name}`);
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
function roundRatios(samples: Sample[], label: string, reference: string): number[] {
  return samples
    .filter((mine) => mine.label === label)
    .flatMap((mine) => {
      const theirs = samples.find((sample) => sample.label === reference && sample.round === mine.round);
      return theirs ? [mine.cpuPer100k / theirs.cpuPer100k] : [];
    });
}

const pairedRatio = (samples: Sample[], label: string, reference: string) => median(roundRatios(samples, label, reference));

/** How far the per-round ratios spread: on this shared machine, the honest error bar of the median. */
function ratioRange(samples: Sample[], label: string, reference: string): string {
  const ratios = roundRatios(samples, label, reference);
  return ratios.length > 1 ? `${formatRatio(Math.min(...ratios))}–${formatRatio(Math.max(...ratios))}` : 'n/a';
}

/** Which runtime each binary's servers reported, e.g. "node 22: node v22.23.5 (/tmp/node22/…/node)". */
function printRuntimes(samples: Sample[], runs: Entry[]): void {
  const seen = new Map<string, string>();
  for (const entry of runs) {
    const runtimes = new Set(samples.filter((sample) => sample.label === entry.label).map((sample) => sample.runtime));
    const where = entry.node ? `${entry.node.name ? `node ${entry.node.name}` : 'node'} (${entry.node.path})` : entry.contender;
    if (runtimes.size > 0) seen.set(where, [...runtimes].join(' / '));
  }
  if (seen.size > 0) console.log(`\nServers ran on: ${[...seen].map(([where, runtime]) => `${where}: ${runtime}`).join('; ')}`);
}

function print(samples: Sample[], runs: Entry[]): void {
  const summaries = runs.map((entry) => ({ entry, ...summarise(entry.label, samples) })).filter((s) => Number.isFinite(s.cpu));
  const ms = (value: number) => `${(value / 1000).toFixed(2)} s`;
  const rows: Cell[][] = summaries.map((s) => [
    s.label,
    ms(s.cpu),
    `${ms(s.cpuMin)}–${ms(s.cpuMax)}`,
    formatRatio(pairedRatio(samples, s.label, referenceOf(s.entry, DIRECT))),
    ratioRange(samples, s.label, referenceOf(s.entry, DIRECT)),
    formatRatio(pairedRatio(samples, s.label, referenceOf(s.entry, FLOOR))),
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
    [
      'server',
      'CPU / 100k events',
      'min–max',
      '÷ direct',
      'rounds',
      '÷ floor',
      ...(BASELINE ? ['÷ baseline'] : []),
      'user',
      'system',
      'JS thread',
      'heap/conn',
      'marginal',
      'RSS/conn',
      'marginal',
      'p50',
      'last',
    ],
    rows,
  );
  printRuntimes(samples, runs);
  console.log(
    '\n÷ direct, ÷ floor: the median of the per-round ratios (against the direct path and the floor on the same Node binary; Bun, Deno: the first one); ' +
      'rounds: the lowest and highest per-round ÷ direct. user, system: the CPU time split; JS thread: the part of the ' +
      "main thread (the rest is GC helpers, libuv and the runtime's own threads). heap/conn: after GC, minus the server before any connection " +
      "(Bun: JavaScriptCore's heap, not V8's). p50, last: publish → read in the client process, median over broadcasts.",
  );
  for (const summary of summaries.filter((s) => GENERIC.includes(s.entry.contender) && !s.entry.dist)) {
    const cpuRatio = pairedRatio(samples, summary.label, referenceOf(summary.entry, DIRECT));
    const met = cpuRatio <= CPU_GOAL && summary.heap <= HEAP_GOAL;
    console.log(
      `Goal: ${summary.label} CPU ≤ ×${CPU_GOAL} the direct path's and heap ≤ ${formatBytes(HEAP_GOAL)}/conn: ` +
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
