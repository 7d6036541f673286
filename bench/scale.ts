/**
 * Scale: one server process holding 10,000 then 19,000 idle SSE connections from a raw-socket
 * client in another process, on loopback. Per contender (edge-sse on the memory, Redis TCP and
 * Upstash-through-the-bridge backends, better-sse, and the socket floor (`socket-floor.ts`) writing the same
 * bytes): heap and RSS per connection after GC, the connections and requests per minute it makes
 * to Redis, and broadcast delivery (p50 / p99 / last) to all 10,000. Then slow clients: 100
 * connections that stop reading while big events are published, and what the server holds.
 *
 * Processes: the server (`scale-server.ts`) and the client (`scale-client.ts`) run as children
 * with `--expose-gc` and `ulimit -n 20000`; this process drives them over IPC and hosts the bridge.
 * Clocks: each child reports `performance.timeOrigin + performance.now()`; the offset to ours is
 * taken from the fastest of 20 IPC round trips, so latencies across processes are exact to
 * about ±half that round trip (typically < 0.1 ms).
 *
 * `BENCH_SCALE_WINDOW_S` (default 60): the idle window over which Redis requests are counted.
 * `BENCH_SCALE_ONLY`: a comma-separated subset of contenders (e.g. `edge-sse memory,better-sse`).
 * `BENCH_SCALE_SLOW=0` skips the slow-client part; `BENCH_SCALE_SIZES` (default `10000,19000`);
 * `BENCH_SCALE_ROUNDS` (default 3): broadcast rounds for the socket floor, better-sse and edge-sse memory.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import type { Bridge } from '../src/bridge/index.js';
import {
  type Broadcast,
  DELIVERY_TIMEOUT_MS,
  type Client,
  type Server,
  arrivedAt,
  broadcast,
  open,
  spawnNode,
  startClient,
  startServerProcess,
  takeSeq,
} from './children.js';
import { REDIS_URL, TOKEN, cleanUp, prefixFor, startBridge } from './redis-common.js';
import type { Contender, Memory, ServerConfig } from './scale-protocol.js';
import { max, median, percentile, sleep } from './stats.js';
import { type Cell, formatBytes, formatMs, formatNumber, formatRatio, printTable } from './table.js';

/** `BENCH_SCALE_SIZES=1000,2000` for a quick try; the broadcast runs at the first size. */
const SIZES = (process.env.BENCH_SCALE_SIZES ?? '10000,19000').split(',').map(Number);
const BROADCAST_AT = SIZES[0]!;
const BROADCASTS = 5;
/**
 * The broadcast is repeated in further rounds, each in fresh processes, the contenders' order
 * alternating, so that a noisy stretch of this shared machine does not fall on one of them only.
 */
const BROADCAST_ROUNDS = Number(process.env.BENCH_SCALE_ROUNDS ?? 3);
const BROADCAST_CONTENDERS: Contender[] = ['socket floor', 'better-sse', 'edge-sse memory'];
const WARM_UPS = 2;
const WINDOW_MS = Number(process.env.BENCH_SCALE_WINDOW_S ?? 60) * 1000;

const SLOW_CLIENTS = 100;
const SLOW_READERS = 10;
const SLOW_EVENTS = 1024;
const SLOW_PAD_BYTES = 8 * 1024;

const CONTENDERS: Contender[] = [
  'socket floor',
  'better-sse',
  'edge-sse memory',
  'edge-sse memory (wrapped)',
  'edge-sse redis',
  'edge-sse upstash',
];
const SLOW_CONTENDERS: Contender[] = ['socket floor', 'better-sse', 'edge-sse memory'];

// ---- child processes ------------------------------------------------------------------------

function startServer(config: ServerConfig): Promise<{ server: Server; port: number; path: string }> {
  return startServerProcess(config.contender, spawnNode('scale-server.ts', [JSON.stringify(config)]));
}

// ---- measuring ------------------------------------------------------------------------------

/** TCP connections process `pid` holds to 127.0.0.1:`port` (from /proc; Linux only, else NaN). */
function connectionsTo(pid: number | undefined, port: number): number {
  try {
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (match) inodes.add(match[1]!);
      } catch {
        // Closed meanwhile.
      }
    }
    const remote = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    let count = 0;
    for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // fields: sl local rem st ... inode(9); st 01 = ESTABLISHED
      if (fields[2] === remote && fields[3] === '01' && inodes.has(fields[9]!)) count++;
    }
    return count;
  } catch {
    return NaN;
  }
}

interface Redis {
  /** TCP connections to Redis (for upstash: the bridge's). */
  connections: number;
  /** HTTP connections to the REST endpoint (upstash only). */
  restConnections: number;
  /** Requests to Redis (TCP: commands and pipelines edge-sse sent; upstash: HTTP requests the bridge got) per minute. */
  requestsPerMinute: number;
  subscriptions: number;
}

interface Level {
  size: number;
  held: number;
  openMs: number;
  heapPerConnection: number;
  rssPerConnection: number;
  redis?: Redis;
}

interface Result {
  contender: Contender;
  levels: Level[];
  broadcasts: Broadcast[];
  error?: string;
}

async function idleRedis(contender: Contender, server: Server, bridge: Bridge | undefined): Promise<Redis | undefined> {
  if (contender !== 'edge-sse redis' && contender !== 'edge-sse upstash') return undefined;
  const requests = async () =>
    contender === 'edge-sse upstash' ? bridge!.stats().requests : (await server.call<'stats'>({ type: 'stats' })).backendRequests;
  const before = await requests();
  await sleep(WINDOW_MS);
  const after = await requests();
  const redisPort = Number(new URL(REDIS_URL).port);
  return {
    connections: contender === 'edge-sse upstash' ? connectionsTo(process.pid, redisPort) : connectionsTo(server.process.pid, redisPort),
    restConnections: contender === 'edge-sse upstash' ? connectionsTo(server.process.pid, Number(new URL(bridge!.url).port)) : 0,
    requestsPerMinute: ((after - before) * 60_000) / WINDOW_MS,
    subscriptions: contender === 'edge-sse upstash' ? bridge!.stats().openSubscriptions : 0,
  };
}

function perConnection(before: Memory, after: Memory, count: number): { heap: number; rss: number } {
  return { heap: (after.heapUsed - before.heapUsed) / count, rss: (after.rss - before.rss) / count };
}

async function measureScale(contender: Contender, index: number, bridge: Bridge | undefined): Promise<Result> {
  const result: Result = { contender, levels: [], broadcasts: [] };
  const config: ServerConfig = {
    contender,
    prefix: prefixFor(`scale-${index}`),
    redisUrl: REDIS_URL,
    bridgeUrl: bridge?.url,
    token: TOKEN,
  };
  // Fresh source addresses per contender: the previous run's ports may still be in TIME_WAIT.
  const sources = [`127.0.0.${10 + 2 * index}`, `127.0.0.${11 + 2 * index}`];
  const { server, port, path } = await startServer(config);
  const client = await startClient();
  try {
    const baseline = await server.call<'memory'>({ type: 'memory' });
    let opened = 0;
    for (const size of SIZES) {
      const step = await open(client, port, path, size - opened, sources);
      opened += step.opened;
      if (process.env.BENCH_SCALE_DEBUG) console.error(`  opened ${JSON.stringify(step)}`);
      if (step.failed > 0) console.error(`  ${contender}: ${step.failed} of ${size - opened + step.opened} connections failed`);
      // Warm-up broadcasts: every connection is live once it has one (and the code is warm).
      let held = 0;
      for (let warm = 0; warm < WARM_UPS; warm++) held = (await broadcast(server, client)).delivered;
      const memory = await server.call<'memory'>({ type: 'memory' });
      const { heap, rss } = perConnection(baseline, memory, held);
      const level: Level = { size, held, openMs: step.ms, heapPerConnection: heap, rssPerConnection: rss };
      level.redis = await idleRedis(contender, server, bridge);
      result.levels.push(level);
      console.error(
        `  ${contender} ${formatNumber(size)}: held ${formatNumber(held)}, heap ${formatBytes(heap)}/conn, rss ${formatBytes(rss)}/conn` +
          (level.redis ? `, redis ${JSON.stringify(level.redis)}` : ''),
      );
      if (size === BROADCAST_AT) result.broadcasts.push(...(await broadcasts(server, client)));
      if (held < size) break;
    }
  } catch (error) {
    result.error = (error as Error).message;
    console.error(`  ${contender}: ${result.error}`);
  } finally {
    await client.stop();
    await server.stop();
  }
  return result;
}

async function broadcasts(server: Server, client: Client): Promise<Broadcast[]> {
  const measured: Broadcast[] = [];
  for (let index = 0; index < BROADCASTS; index++) {
    measured.push(await broadcast(server, client));
    if (process.env.BENCH_SCALE_DEBUG) console.error(`  broadcast: ${measured.at(-1)!.delivered} delivered`);
    await sleep(200);
  }
  return measured;
}

/** One more broadcast round: a fresh server and client, BROADCAST_AT connections, warm-ups, then BROADCASTS. */
async function broadcastRound(contender: Contender, addressIndex: number): Promise<Broadcast[]> {
  const sources = [`127.0.0.${100 + 2 * addressIndex}`, `127.0.0.${101 + 2 * addressIndex}`];
  const config: ServerConfig = { contender, prefix: prefixFor(`round-${addressIndex}`), redisUrl: REDIS_URL, token: TOKEN };
  const { server, port, path } = await startServer(config);
  const client = await startClient();
  try {
    await open(client, port, path, BROADCAST_AT, sources);
    for (let warm = 0; warm < WARM_UPS; warm++) await broadcast(server, client);
    return await broadcasts(server, client);
  } finally {
    await client.stop();
    await server.stop();
  }
}

interface SlowResult {
  contender: Contender;
  /** Server heap + external (Buffers) growth, and RSS growth, after publishing, in bytes. */
  heapAndExternal: number;
  rss: number;
  stillOpen: number;
  closedSlow: number;
  readersDelivered: number;
  error?: string;
}

/** 100 clients stop reading; SLOW_EVENTS × 8 KiB are published; what does the server hold? */
async function measureSlow(contender: Contender, index: number): Promise<SlowResult> {
  const result: SlowResult = { contender, heapAndExternal: NaN, rss: NaN, stillOpen: NaN, closedSlow: 0, readersDelivered: 0 };
  const { server, port, path } = await startServer({ contender, prefix: prefixFor(`slow-${index}`), redisUrl: REDIS_URL });
  const client = await startClient();
  const readers = await startClient();
  const sources = [`127.0.0.${40 + index}`];
  try {
    await open(client, port, path, SLOW_CLIENTS, sources, true);
    await open(readers, port, path, SLOW_READERS, sources);
    await broadcast(server, readers);
    const before = await server.call<'memory'>({ type: 'memory' });
    let delivered = 0;
    for (let event = 0; event < SLOW_EVENTS; event++) {
      const seq = takeSeq();
      const watched = event === SLOW_EVENTS - 1;
      if (watched) await readers.call({ type: 'watch', seq });
      await server.call({ type: 'publish', seq, padBytes: SLOW_PAD_BYTES });
      if (watched) {
        const { times } = await readers.call<'arrivals'>({ type: 'wait', seq, timeoutMs: DELIVERY_TIMEOUT_MS }, DELIVERY_TIMEOUT_MS + 5000);
        delivered = times.filter(arrivedAt).length;
      }
    }
    await sleep(1000);
    const after = await server.call<'memory'>({ type: 'memory' });
    const stats = await server.call<'stats'>({ type: 'stats' });
    result.heapAndExternal = after.heapUsed + after.external - (before.heapUsed + before.external);
    result.rss = after.rss - before.rss;
    result.stillOpen = stats.open - SLOW_READERS;
    result.closedSlow = stats.closedSlow;
    result.readersDelivered = delivered;
  } catch (error) {
    result.error = (error as Error).message;
    console.error(`  slow ${contender}: ${result.error}`);
  } finally {
    await readers.stop();
    await client.stop();
    await server.stop();
  }
  return result;
}

// ---- printing -------------------------------------------------------------------------------

const ratio = (a: number | undefined, b: number | undefined) => formatRatio((a ?? NaN) / (b ?? NaN));

function printScale(results: Result[]): void {
  const rows: Cell[][] = [];
  for (const { contender, levels } of results) {
    for (const level of levels) {
      rows.push([
        contender,
        formatNumber(level.size),
        formatNumber(level.held),
        formatBytes(level.heapPerConnection),
        formatBytes(level.rssPerConnection),
        level.redis ? formatNumber(level.redis.connections) : '—',
        level.redis?.restConnections ? formatNumber(level.redis.restConnections) : '—',
        level.redis ? formatNumber(level.redis.requestsPerMinute, 1) : '—',
        `${(level.openMs / 1000).toFixed(1)} s`,
      ]);
    }
  }
  const level = (contender: Contender, size: number) =>
    results.find((result) => result.contender === contender)?.levels.find((entry) => entry.size === size);
  for (const size of SIZES) {
    const edge = level('edge-sse memory', size);
    for (const other of ['better-sse', 'socket floor'] as const) {
      const them = level(other, size);
      rows.push([
        `edge-sse memory ÷ ${other}`,
        formatNumber(size),
        '',
        ratio(edge?.heapPerConnection, them?.heapPerConnection),
        ratio(edge?.rssPerConnection, them?.rssPerConnection),
        '',
        '',
        '',
        ratio(edge?.openMs, them?.openMs),
      ]);
    }
  }
  printTable(
    `Scale: idle connections in one server process, raw-socket clients in another (after GC; Redis over a ${WINDOW_MS / 1000}-s idle window)`,
    ['server', 'clients', 'held', 'heap/conn', 'RSS/conn', 'Redis conns', 'REST conns', 'Redis req/min', 'open'],
    rows,
  );
  console.log(
    '\n"held": connections that received a broadcast after opening. Redis conns: TCP connections to Redis ' +
      "(upstash: the bridge's); REST conns: HTTP connections from the server to the bridge; req/min: TCP: commands and " +
      'pipelines edge-sse sent; upstash: HTTP requests the bridge received. Ratios: lower is better for edge-sse.',
  );
}

function summarise(broadcasts: Broadcast[]) {
  return {
    p50: median(broadcasts.map((b) => percentile(b.latencies, 50))),
    p99: median(broadcasts.map((b) => percentile(b.latencies, 99))),
    last: median(broadcasts.map((b) => max(b.latencies))),
    bestLast: Math.min(...broadcasts.map((b) => max(b.latencies))),
    delivered: Math.min(...broadcasts.map((b) => b.delivered)),
  };
}

function printBroadcast(results: Result[]): void {
  const summaries = new Map(results.filter((r) => r.broadcasts.length > 0).map((r) => [r.contender, summarise(r.broadcasts)]));
  const rows: Cell[][] = [...summaries].map(([contender, s]) => [
    contender,
    formatNumber(s.delivered),
    formatMs(s.p50),
    formatMs(s.p99),
    formatMs(s.last),
    formatMs(s.bestLast),
  ]);
  const edge = summaries.get('edge-sse memory');
  for (const other of ['better-sse', 'socket floor'] as const) {
    const them = summaries.get(other);
    rows.push([
      `edge-sse memory ÷ ${other}`,
      '',
      ratio(edge?.p50, them?.p50),
      ratio(edge?.p99, them?.p99),
      ratio(edge?.last, them?.last),
      ratio(edge?.bestLast, them?.bestLast),
    ]);
  }
  printTable(
    `Broadcast: one event to all ${formatNumber(BROADCAST_AT)} connections, publish → read in the client process ` +
      `(median of ${BROADCASTS} broadcasts × ${BROADCAST_ROUNDS} rounds for the first three, ${BROADCASTS} for the others)`,
    ['server', 'delivered', 'p50', 'p99', 'last', 'best last'],
    rows,
  );
  console.log('\nRatios: lower is better for edge-sse. Goal: last ≤ ×1.20 the floor (socket floor) and below better-sse.');
}

function printSlow(results: SlowResult[]): void {
  const mib = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : 'n/a');
  printTable(
    `Slow clients: ${SLOW_CLIENTS} connections stop reading, ${formatNumber(SLOW_EVENTS)} events × ` +
      `${SLOW_PAD_BYTES / 1024} KiB published (${mib(SLOW_EVENTS * SLOW_PAD_BYTES)} each), ${SLOW_READERS} readers keep up`,
    ['server', 'heap+external growth', 'RSS growth', 'stalled still open', 'closed as slow', 'readers got the last'],
    results.map((r) => [
      r.contender,
      mib(r.heapAndExternal),
      mib(r.rss),
      formatNumber(r.stillOpen),
      formatNumber(r.closedSlow),
      `${r.readersDelivered}/${SLOW_READERS}`,
    ]),
  );
  console.log(
    '\nAfter GC, 1 s after the last publish. edge-sse closes a stream whose unread bytes exceed maxQueuedBytes (1 MiB); ' +
      'the kernel holds up to ~4 MiB more per stalled socket (tcp_wmem) before the server must queue. edge-sse runs with ' +
      'its default retention (maxLength 1000), so its growth includes the ~8 MiB of events its memory backend keeps.',
  );
}

export async function run(): Promise<void> {
  const only = process.env.BENCH_SCALE_ONLY?.split(',').map((name) => name.trim());
  const contenders = CONTENDERS.filter((contender) => !only || only.includes(contender));
  const bridge = contenders.includes('edge-sse upstash') ? await startBridge() : undefined;
  const results: Result[] = [];
  const slow: SlowResult[] = [];
  try {
    for (const [index, contender] of contenders.entries()) {
      console.error(`scale: ${contender}…`);
      results.push(await measureScale(contender, index, bridge));
    }
    const rounders = results.filter((r) => BROADCAST_CONTENDERS.includes(r.contender) && r.broadcasts.length > 0);
    for (let round = 2; round <= BROADCAST_ROUNDS; round++) {
      const order = round % 2 === 0 ? [...rounders].reverse() : rounders;
      for (const [index, result] of order.entries()) {
        console.error(`broadcast round ${round}: ${result.contender}…`);
        const addressIndex = (round - 2) * BROADCAST_CONTENDERS.length + index;
        await broadcastRound(result.contender, addressIndex).then(
          (measured) => result.broadcasts.push(...measured),
          (error: Error) => console.error(`  ${result.contender}: round ${round}: ${error.message}`),
        );
      }
    }
    if (process.env.BENCH_SCALE_SLOW !== '0') {
      for (const [index, contender] of SLOW_CONTENDERS.filter((c) => contenders.includes(c)).entries()) {
        console.error(`slow clients: ${contender}…`);
        slow.push(await measureSlow(contender, index));
      }
    }
  } finally {
    await bridge?.close();
    await cleanUp().catch(() => undefined);
  }
  printScale(results);
  printBroadcast(results);
  if (slow.length > 0) printSlow(slow);
}
