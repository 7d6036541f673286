/**
 * Cloudflare Workers, in real workerd (miniflare): N listeners on one channel, served by
 * examples/cloudflare as users deploy it (bundled by `wrangler deploy --dry-run`, the built
 * package), once through its Durable Objects (edge-sse/cloudflare, the default) and once per
 * connection (STREAM_READERS=per-connection), in the same run. For each N, each path gets a fresh
 * workerd and its own bridge in front of the local Redis, so a bridge's counters are that path's
 * requests and subscriptions alone; the events are published through another bridge. Both paths'
 * listeners are connected at once: the windows run for both together, latency in rounds that
 * alternate between them.
 *
 * Per path and N: upstream subscriptions held while the N listen; Redis requests per
 * connection-minute in an idle window, and then while one event a second is published (small
 * events, which ride along in the wake-up, and events over 32 KB, which every reader must read);
 * plus what one reconnection of every listener costs (as after maxDurationMs), spread over a
 * stream's mean lifetime; and publish → receive latency over every delivery of small events
 * 50 ms apart (see latencyEvents), in 3 rounds per path.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Redis as IORedis } from 'ioredis';
import { Miniflare } from 'miniflare';
import { unstable_getMiniflareWorkerOptions } from 'wrangler';
import type { Bridge } from '../src/bridge/index.js';
import { REDIS_URL, TOKEN, startBridge } from './redis-common.js';
import { percentile, sleep } from './stats.js';
import { type Cell, formatMs, formatNumber, formatRatio, printTable } from './table.js';
import { upstash, core } from './subject.js';

const ROOT = new URL('..', import.meta.url).pathname;
const EXAMPLE = join(ROOT, 'examples', 'cloudflare');
const COUNTS = (process.env.BENCH_WORKERS_N ?? '1,10,50,200').split(',').map(Number);
const IDLE_MS = Number(process.env.BENCH_WORKERS_IDLE_SECONDS ?? 10) * 1000;
const EVENTS = Number(process.env.BENCH_WORKERS_EVENTS ?? 10);
const LARGE_EVENTS = Number(process.env.BENCH_WORKERS_LARGE_EVENTS ?? 10);
/**
 * Latency samples per path: every delivery counts, so fewer events for more listeners (300 events
 * for N ≤ 20, 60 for 200), enough for a p99 that one stall of the shared machine does not make.
 */
const LATENCY_SAMPLES = Number(process.env.BENCH_WORKERS_LATENCY_SAMPLES ?? 6000);
const latencyEvents = (n: number) => Math.min(300, Math.max(60, Math.round(LATENCY_SAMPLES / n / 3) * 3));
const LATENCY_GAP_MS = 50;
const LATENCY_ROUNDS = 3;
/** The example's maxDurationMs is 240 s: streams end after 80–100% of it, 216 s on average. */
const LIFETIME_MIN = (0.9 * 240) / 60;
const RUN = randomBytes(3).toString('hex');
const LARGE_PAD = 'x'.repeat(40 * 1024);

type Path = 'Durable Object' | 'per connection';
const PATHS: Path[] = ['Durable Object', 'per connection'];

interface Result {
  subscriptions: number;
  idlePerConnMin: number;
  reconnectPerConn: number;
  smallPerConnMin: number;
  largePerConnMin: number;
  latencies: number[];
}

type Publisher = ReturnType<typeof core.createSSE>;

interface Running {
  url: string;
  bridge: Bridge;
  close(): Promise<void>;
}

/** The example bundled as wrangler would upload it. */
function bundleExample(): { outdir: string; config: Record<string, unknown> } {
  const outdir = mkdtempSync(join(tmpdir(), 'edge-sse-bench-worker-'));
  const bundle = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js'), 'deploy', '--dry-run', '--outdir', outdir],
    {
      cwd: EXAMPLE,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1', NO_COLOR: '1' },
      encoding: 'utf8',
    },
  );
  if (bundle.status !== 0) throw new Error(`wrangler deploy --dry-run failed:\n${bundle.stdout}\n${bundle.stderr}`);
  const config = unstable_getMiniflareWorkerOptions(join(EXAMPLE, 'wrangler.toml')).workerOptions as Record<string, unknown>;
  return { outdir, config };
}

async function startWorker(outdir: string, config: Record<string, unknown>, path: Path): Promise<Running> {
  const bridge = await startBridge();
  const mf = new Miniflare({
    modules: true,
    scriptPath: join(outdir, 'index.js'),
    modulesRoot: outdir,
    compatibilityDate: config.compatibilityDate as string,
    compatibilityFlags: config.compatibilityFlags as string[],
    durableObjects: config.durableObjects as Record<string, string>,
    bindings: {
      ...(config.bindings as Record<string, string>),
      UPSTASH_REDIS_REST_URL: bridge.url,
      UPSTASH_REDIS_REST_TOKEN: TOKEN,
      STREAM_READERS: path === 'Durable Object' ? 'object' : 'per-connection',
      // Per connection, a budget would end streams during the windows; paid plans allow more.
      MAX_REQUESTS: '100000',
    },
    host: '127.0.0.1',
    port: 0,
    cf: false,
    // The example logs every closed stream; not here.
    structuredWorkerdLogs: true,
    handleStructuredLogs: () => undefined,
  });
  const url = (await mf.ready).toString().replace(/\/$/, '');
  return { url, bridge, close: async () => (await mf.dispose(), await bridge.close()) };
}

/** One listener: reads frames, records latencies of timestamped events, remembers its cursor. */
class Listener {
  lastId: string | undefined;
  private aborter = new AbortController();

  constructor(private onEvent: (sentAt: number) => void) {}

  /** Resolves once the stream would receive the next event (fresh: `sse:ready`; resumed: answered). */
  async open(url: string): Promise<void> {
    const headers: Record<string, string> = this.lastId ? { 'Last-Event-ID': this.lastId } : {};
    const response = await fetch(url, { headers, signal: this.aborter.signal });
    if (!response.ok || !response.body) throw new Error(`GET ${url}: ${response.status}`);
    const reader = response.body.getReader();
    let readyResolve!: () => void;
    const ready = new Promise<void>((resolve) => (readyResolve = resolve));
    if (this.lastId) readyResolve();
    void (async () => {
      const decoder = new TextDecoder();
      let buffered = '';
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          buffered += decoder.decode(value, { stream: true });
          let end: number;
          while ((end = buffered.indexOf('\n\n')) !== -1) {
            this.frame(buffered.slice(0, end), readyResolve);
            buffered = buffered.slice(end + 2);
          }
        }
      } catch {
        // Left.
      }
    })();
    return ready;
  }

  leave(): void {
    this.aborter.abort();
    this.aborter = new AbortController();
  }

  private frame(text: string, ready: () => void): void {
    const id = /^id: (.*)$/m.exec(text)?.[1];
    if (id) this.lastId = id;
    if (text.includes('event: sse:ready')) return ready();
    const sentAt = /"t":([\d.]+)/.exec(text)?.[1];
    if (sentAt) this.onEvent(Number(sentAt));
  }
}

/** One path's N listeners on a channel of its own, counted at its own bridge. */
class Audience {
  readonly channel: string;
  readonly latencies: number[] = [];
  received = 0;
  recording = false;
  private listeners: Listener[];

  constructor(
    readonly path: Path,
    private running: Running,
    readonly n: number,
  ) {
    this.channel = `bench-workers-${RUN}-${n}-${path === 'Durable Object' ? 'do' : 'pc'}`;
    this.listeners = Array.from({ length: n }, () => new Listener((sentAt) => this.arrived(sentAt)));
  }

  get url(): string {
    return `${this.running.url}/stream?channel=${this.channel}`;
  }

  requests(): number {
    return this.running.bridge.stats().requests;
  }

  subscriptions(): number {
    return this.running.bridge.stats().openSubscriptions;
  }

  async connect(): Promise<void> {
    for (let at = 0; at < this.n; at += 25) await Promise.all(this.listeners.slice(at, at + 25).map((listener) => listener.open(this.url)));
  }

  /** Every listener once, one after the other, with its cursor (as after maxDurationMs). */
  async reconnect(): Promise<void> {
    for (const listener of this.listeners) {
      listener.leave();
      await listener.open(this.url);
    }
  }

  leave(): void {
    for (const listener of this.listeners) listener.leave();
  }

  private arrived(sentAt: number): void {
    this.received++;
    if (this.recording) this.latencies.push(performance.now() - sentAt);
  }
}

/**
 * Both paths' audiences are connected at once; idle and busy windows run for both together (each
 * bridge counts its own path), latency in short rounds that alternate between the paths, so both
 * meet the shared machine's noise alike.
 */
async function measure(audiences: Audience[], publisher: Publisher): Promise<Map<Path, Result>> {
  for (const audience of audiences) await audience.connect();
  await sleep(500);
  const subscriptions = audiences.map((audience) => audience.subscriptions());

  /** Requests per connection-minute each audience's bridge saw while `work` ran. */
  const window = async (work: () => Promise<void>): Promise<number[]> => {
    const before = audiences.map((audience) => audience.requests());
    const started = Date.now();
    await work();
    const minutes = (Date.now() - started) / 60_000;
    return audiences.map((audience, index) => (audience.requests() - before[index]!) / (audience.n * minutes));
  };
  /** `count` events 1/s or `gapMs` apart on each audience's channel; waits until all arrived. */
  const publishEach = async (targets: Audience[], count: number, pad: string, gapMs: number) => {
    const expected = targets.map((audience) => audience.received + count * audience.n);
    for (let seq = 0; seq < count; seq++) {
      // Publisher and listeners share this process's clock: performance.now(), to the microsecond.
      await Promise.all(
        targets.map((audience) => publisher.sendEvent('tick', { t: performance.now(), seq, pad }, { channel: audience.channel })),
      );
      await sleep(gapMs);
    }
    const deadline = Date.now() + 10_000;
    while (targets.some((audience, index) => audience.received < expected[index]!) && Date.now() < deadline) await sleep(50);
  };

  const idle = await window(() => sleep(IDLE_MS));
  const small = await window(() => publishEach(audiences, EVENTS, '', 1000));
  const large = await window(() => publishEach(audiences, LARGE_EVENTS, LARGE_PAD, 1000));
  for (let round = 0; round < LATENCY_ROUNDS; round++) {
    for (const audience of round % 2 === 0 ? audiences : [...audiences].reverse()) {
      audience.recording = true;
      await publishEach([audience], latencyEvents(audience.n) / LATENCY_ROUNDS, '', LATENCY_GAP_MS);
      audience.recording = false;
    }
  }
  const reconnects: number[] = [];
  for (const audience of audiences) {
    const before = audience.requests();
    await audience.reconnect();
    await sleep(300);
    reconnects.push((audience.requests() - before) / audience.n);
    audience.leave();
  }
  return new Map(
    audiences.map((audience, index) => [
      audience.path,
      {
        subscriptions: subscriptions[index]!,
        idlePerConnMin: idle[index]!,
        reconnectPerConn: reconnects[index]!,
        smallPerConnMin: small[index]!,
        largePerConnMin: large[index]!,
        latencies: audience.latencies,
      },
    ]),
  );
}

async function cleanUp(): Promise<void> {
  const redis = new IORedis(REDIS_URL);
  try {
    for await (const keys of redis.scanStream({ match: `sse:bench-workers-${RUN}-*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) await redis.unlink(...keys);
    }
  } finally {
    redis.disconnect();
  }
}

export async function run(): Promise<void> {
  const { outdir, config } = bundleExample();
  const publisherBridge = await startBridge();
  const publisher = core.createSSE({ backend: upstash.upstashBackend({ url: publisherBridge.url, token: TOKEN }) });
  const results = new Map<string, Result>();
  try {
    for (const [index, n] of COUNTS.entries()) {
      const workers = await Promise.all(PATHS.map((path) => startWorker(outdir, config, path)));
      try {
        const audiences = PATHS.map((path, at) => new Audience(path, workers[at]!, n));
        for (const [path, result] of await measure(audiences, publisher)) results.set(`${path} ${index}`, result);
      } finally {
        await Promise.all(workers.map((running) => running.close()));
      }
    }
  } finally {
    await publisherBridge.close();
    rmSync(outdir, { recursive: true, force: true });
    await cleanUp();
  }
  print(results);
}

function print(results: Map<string, Result>): void {
  const rows: Cell[][] = [];
  for (const [index, n] of COUNTS.entries()) {
    const base = results.get(`per connection ${index}`)!;
    for (const path of PATHS) {
      const result = results.get(`${path} ${index}`)!;
      const p50 = percentile(result.latencies, 50);
      const p99 = percentile(result.latencies, 99);
      rows.push([
        `${path}, N = ${n}`,
        result.subscriptions,
        formatNumber(result.idlePerConnMin, 3),
        formatNumber(result.reconnectPerConn, 2),
        formatNumber(result.idlePerConnMin + result.reconnectPerConn / LIFETIME_MIN, 3),
        formatNumber(result.smallPerConnMin, 3),
        formatNumber(result.largePerConnMin, 2),
        formatMs(p50),
        formatMs(p99),
        path === 'per connection'
          ? ''
          : `${formatRatio(p50 / percentile(base.latencies, 50))} / ${formatRatio(p99 / percentile(base.latencies, 99))}`,
      ]);
    }
  }
  printTable(
    `workers — N listeners on one channel in workerd (examples/cloudflare, built package); Redis requests per connection-minute; ` +
      `idle window ${IDLE_MS / 1000} s, ${EVENTS} small and ${LARGE_EVENTS} large events at 1/s; latency over 60–300 events × N listeners`,
    [
      'path, listeners',
      'subscriptions',
      'idle',
      'reconnect req/conn',
      'idle + reconnects',
      '1 small event/s',
      '1 large event/s',
      'p50',
      'p99',
      'p50 / p99 vs per conn',
    ],
    rows,
  );
}
