/**
 * examples/cloudflare in real workerd (miniflare), bundled by `wrangler deploy --dry-run` exactly
 * as it would be uploaded, configured from its wrangler.toml (its Durable Object binding too),
 * talking to an edge-sse bridge on loopback in front of the real Redis. The Worker's bridge counts
 * every request the Worker makes. By default streams go through the example's Durable Objects;
 * STREAM_READERS=per-connection runs the plain path the later tests cover.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventSource } from 'eventsource';
import { Redis } from 'ioredis';
import { Miniflare } from 'miniflare';
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from 'wrangler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backends/contract.ts';
import { upstashBackend } from '../../src/backends/upstash/index.ts';
import { type Bridge, createBridge } from '../../src/bridge/index.ts';
import { sendEvent } from '../../src/index.ts';
import { REDIS_URL, deleteKeysWithPrefix } from '../helpers/redis.ts';
import { SSEReader } from '../helpers/sse.ts';
import { ROOT, canRunOffline, ensureBuilt, run, sleep, until } from './helpers.ts';

const EXAMPLE = join(ROOT, 'examples', 'cloudflare');
const WRANGLER_BIN = join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const RUN = randomBytes(4).toString('hex');
const channel = (name: string) => `test-cf-${RUN}-${name}`;
const TOKEN = randomBytes(16).toString('hex');

let outdir: string;
let config: {
  compatibilityDate?: string;
  compatibilityFlags?: string[];
  bindings?: Record<string, unknown>;
  durableObjects?: Record<string, { className: string; useSQLite?: boolean }>;
};
/** The bridge only the Worker talks to: its counters are the Worker's requests. */
let workerBridge: Bridge;
/** The test publishes through its own bridge, so publishing never counts as the Worker's. */
let publisherBridge: Bridge;
let publisher: Backend;
const instances: Miniflare[] = [];

interface Worker {
  url: string;
  bridge: Bridge;
  /** What the Worker printed (console.log) so far. */
  logs(): string;
}

interface WorkerOptions {
  flags?: string[];
  maxRequests?: string;
  /** The example's STREAM_READERS: "object" (its default) or "per-connection". */
  readers?: 'object' | 'per-connection';
  ownBridge?: boolean;
}

async function startWorker(options: WorkerOptions = {}): Promise<Worker> {
  let logs = '';
  const bridge =
    options.maxRequests || options.flags || options.ownBridge || options.readers
      ? await createBridge({ token: TOKEN, redis: REDIS_URL })
      : workerBridge;
  const mf = new Miniflare({
    modules: true,
    scriptPath: join(outdir, 'index.js'),
    modulesRoot: outdir,
    compatibilityDate: config.compatibilityDate,
    compatibilityFlags: options.flags ?? config.compatibilityFlags,
    durableObjects: config.durableObjects,
    // wrangler.toml's [vars], plus the two secrets pointing at the bridge on loopback.
    bindings: {
      ...(config.bindings ?? {}),
      UPSTASH_REDIS_REST_URL: bridge.url,
      UPSTASH_REDIS_REST_TOKEN: TOKEN,
      ...(options.maxRequests ? { MAX_REQUESTS: options.maxRequests } : {}),
      ...(options.readers ? { STREAM_READERS: options.readers } : {}),
    },
    host: '127.0.0.1',
    port: 0,
    // No request.cf download from workers.cloudflare.com: placeholders are enough here.
    cf: false,
    structuredWorkerdLogs: true,
    handleStructuredLogs: ({ message }: { message: string }) => {
      logs += `${message}\n`;
    },
  });
  instances.push(mf);
  const url = (await mf.ready).toString().replace(/\/$/, '');
  if (bridge !== workerBridge) extraBridges.push(bridge);
  return { url, bridge, logs: () => logs };
}
const extraBridges: Bridge[] = [];

let worker: Worker;
let migrations: { tag: string; new_sqlite_classes?: string[] }[];

beforeAll(async () => {
  await ensureBuilt();
  outdir = mkdtempSync(join(tmpdir(), 'edge-sse-worker-'));
  const offline = canRunOffline();
  const bundle = await run(process.execPath, [WRANGLER_BIN, 'deploy', '--dry-run', '--outdir', outdir], {
    cwd: EXAMPLE,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1', NO_COLOR: '1' },
    offline,
    timeoutMs: 60_000,
  });
  if (bundle.code !== 0) throw new Error(`wrangler deploy --dry-run failed:\n${bundle.output}`);
  config = unstable_getMiniflareWorkerOptions(join(EXAMPLE, 'wrangler.toml')).workerOptions as typeof config;
  migrations = unstable_readConfig({ config: join(EXAMPLE, 'wrangler.toml') }).migrations;

  workerBridge = await createBridge({ token: TOKEN, redis: REDIS_URL });
  publisherBridge = await createBridge({ token: TOKEN, redis: REDIS_URL });
  publisher = upstashBackend({ url: publisherBridge.url, token: TOKEN });
  const started = Date.now();
  worker = await startWorker();
  console.info(`wrangler bundle: ${(bundle.ms / 1000).toFixed(1)} s; workerd ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, 120_000);

afterAll(async () => {
  await Promise.all(instances.map((mf) => mf.dispose()));
  for (const bridge of [workerBridge, publisherBridge, ...extraBridges]) await bridge?.close();
  if (outdir) rmSync(outdir, { recursive: true, force: true });
  const redis = new Redis(REDIS_URL);
  await deleteKeysWithPrefix(redis, `sse:test-cf-${RUN}-`);
  redis.disconnect();
});

/** Over the 32 KB a wake-up carries: readers must read it from the stream. */
const LARGE = 'x'.repeat(40 * 1024);
const publish = (name: string, data: string, type = 'message') => sendEvent(type, data, { backend: publisher, channel: name });

/** A raw stream (fetch), to read headers and to leave whenever the test wants. */
async function openStream(base: string, name: string | string[], headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const query = [name]
    .flat()
    .map((one) => `channel=${encodeURIComponent(one)}`)
    .join('&');
  const res = await fetch(`${base}/stream?${query}`, { headers, signal: controller.signal });
  expect(res.status).toBe(200);
  const reader = new SSEReader(res);
  await reader.waitFor(
    () => reader.events.some((event) => event.event === 'sse:ready' || !event.event.startsWith('sse:')),
    'the stream to start',
  );
  return { res, reader, leave: () => controller.abort() };
}

describe('examples/cloudflare in workerd (miniflare) against the bridge', () => {
  it('the bundle is the one wrangler would upload: enable_request_signal, the Durable Object binding and its migration', () => {
    expect(config.compatibilityFlags).toContain('enable_request_signal');
    expect(config.durableObjects).toEqual({ SSE: { className: 'StreamObject', useSQLite: true } });
    expect(migrations).toEqual([{ tag: 'v1', new_sqlite_classes: ['StreamObject'] }]);
    expect(config.bindings?.STREAM_READERS).toBe('object');
    expect(config.bindings?.MAX_REQUESTS).toBe('40');
  });

  it('type-checks against the built edge-sse types (tsc -p examples/cloudflare)', async () => {
    const tsc = await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '--noEmit', '-p', EXAMPLE], {
      cwd: EXAMPLE,
      timeoutMs: 60_000,
    });
    expect(tsc.output).toBe('');
    expect(tsc.code).toBe(0);
  }, 60_000);

  it('events sent via /send arrive at /stream, read by the eventsource client', async () => {
    const name = channel('flow');
    const source = new EventSource(`${worker.url}/stream?channel=${name}`);
    const received: string[] = [];
    source.addEventListener('message', (event) => received.push(event.data));
    try {
      await new Promise((resolve, reject) => {
        source.addEventListener('sse:ready', resolve, { once: true });
        source.addEventListener('error', reject, { once: true });
      });
      for (const data of ['one', 'two', 'three']) {
        const res = await fetch(`${worker.url}/send`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'message', data, channel: name }),
        });
        expect(res.status).toBe(200);
        expect(((await res.json()) as { id: string }).id).toMatch(/^\d+-\d+$/);
      }
      await until(() => received.length === 3, 'three events');
      expect(received).toEqual(['one', 'two', 'three']);
    } finally {
      source.close();
    }
  });

  it('answers with SSE headers, 400 for bad events and 404 elsewhere', async () => {
    const stream = await openStream(worker.url, channel('headers'));
    expect(stream.res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(stream.res.headers.get('cache-control')).toContain('no-transform');
    stream.leave();
    const bad = await fetch(`${worker.url}/send`, { method: 'POST', body: JSON.stringify({ type: 'bad type\n', data: 1 }) });
    expect(bad.status).toBe(400);
    expect((await fetch(`${worker.url}/elsewhere`)).status).toBe(404);
  });

  it('resumes with Last-Event-ID: a reconnecting client gets exactly what it missed', async () => {
    const name = channel('resume');
    const first = await openStream(worker.url, name);
    await publish(name, 'seen');
    await first.reader.waitForMessages(1);
    const lastId = first.reader.messages[0]!.id!;
    first.leave();
    await publish(name, 'missed 1');
    await publish(name, 'missed 2');
    const second = await openStream(worker.url, name, { 'last-event-id': lastId });
    try {
      await second.reader.waitForMessages(2);
      await publish(name, 'live');
      await second.reader.waitForMessages(3);
      expect(second.reader.messages.map((event) => event.data)).toEqual(['missed 1', 'missed 2', 'live']);
    } finally {
      second.leave();
    }
  });

  it('by default, 10 listeners on a channel share ONE upstream subscription, held by its Durable Object', async () => {
    const worker = await startWorker({ ownBridge: true });
    const name = channel('shared');
    const first = await openStream(worker.url, name);
    // What the first listener cost (subscribing, reading the head): the other nine add nothing.
    const connected = worker.bridge.stats().requests;
    const streams = [first, ...(await Promise.all(Array.from({ length: 9 }, () => openStream(worker.url, name))))];
    try {
      expect(worker.bridge.stats().openSubscriptions).toBe(1);
      expect(worker.bridge.stats().requests).toBe(connected);
      await publish(name, 'to all');
      await publish(name, LARGE);
      await Promise.all(streams.map((stream) => stream.reader.waitForMessages(2)));
      // The large event is read once, for all ten.
      expect(worker.bridge.stats().requests).toBe(connected + 1);
    } finally {
      for (const stream of streams) stream.leave();
      await publish(name, 'to nobody');
    }
    await until(() => worker.logs().includes('edge-sse: stream closed (client)'), "the object's onDisconnect('client')");
  });

  it('a multi-channel stream gets both channels, with one cursor position per channel', async () => {
    const [a, b] = [channel('multi-a'), channel('multi-b')].sort() as [string, string];
    const stream = await openStream(worker.url, [a, b]);
    try {
      await publish(a, 'on a');
      await stream.reader.waitForMessages(1);
      await publish(b, 'on b');
      await stream.reader.waitForMessages(2);
      expect(stream.reader.messages.map((event) => event.data)).toEqual(['on a', 'on b']);
      expect(stream.reader.messages[1]!.id!.split(',')).toHaveLength(2);
    } finally {
      stream.leave();
    }
  });

  /**
   * The plain path (STREAM_READERS=per-connection). workerd notices that a client left when it
   * next writes to it (an event or a heartbeat); with enable_request_signal it then aborts
   * request.signal and edge-sse closes the stream itself.
   */
  it("per connection: after the client disconnects, the Worker's requests to the bridge stop", async () => {
    // A Worker of its own: other tests' streams whose clients left stay open until their next
    // write (the heartbeat, 15 s), and would blur the count.
    const worker = await startWorker({ readers: 'per-connection' });
    const name = channel('leave');
    const stream = await openStream(worker.url, name);
    await until(() => worker.bridge.stats().openSubscriptions === 1, 'the Worker to subscribe');
    // Connecting costs 3 for the Worker's first stream: the app id (once per backend), the
    // subscription and, once it is confirmed, the channel's head (which the stream waits for
    // before it answers).
    expect(worker.bridge.stats().requests).toBe(3);
    await sleep(100); // a request still on its way (none is expected) must not be taken for the event's
    // A small event rides along in the wake-up: no request. One too large to ride along costs the
    // Worker a read at its bridge — the requests that must stop once the client has left.
    const listening = worker.bridge.stats().requests;
    await publish(name, 'while listening');
    await stream.reader.waitForMessages(1);
    expect(worker.bridge.stats().requests).toBe(listening);
    await publish(name, LARGE);
    await stream.reader.waitForMessages(2);
    expect(worker.bridge.stats().requests).toBeGreaterThan(listening);

    stream.leave();
    await publish(name, 'to nobody'); // the Worker's write of this one finds the client gone
    await until(() => worker.bridge.stats().openSubscriptions === 0, 'the Worker to drop its subscription', 5000);
    await until(() => worker.logs().includes('edge-sse: stream closed (client)'), 'onClose("client") in the Worker');
    const after = worker.bridge.stats().requests;
    for (let n = 0; n < 5; n++) {
      await publish(name, `${LARGE} after leaving ${n}`);
      await sleep(100);
    }
    // Nothing announces a request that is not made: it takes time without one.
    await sleep(500);
    expect(worker.bridge.stats().requests).toBe(after);
    expect(worker.bridge.stats().openSubscriptions).toBe(0);
  });

  it('per connection, without enable_request_signal the Worker is never told: edge-sse never hears the client left', async () => {
    const flagless = await startWorker({ flags: [], readers: 'per-connection' });
    const name = channel('no-flag');
    const stream = await openStream(flagless.url, name);
    await until(() => flagless.bridge.stats().openSubscriptions === 1, 'the Worker to subscribe');
    stream.leave();
    await publish(name, 'to nobody');
    // The runtime tears the request down when the write fails, but the Worker's code is not told.
    await until(() => flagless.bridge.stats().openSubscriptions === 0, 'the runtime to cancel the request', 5000);
    await sleep(500); // a log line that never comes: give it time to come
    expect(flagless.logs()).not.toContain('edge-sse: stream closed');
  });

  it('per connection, maxRequests: a stream that spent its budget ends, the client resumes and loses nothing', async () => {
    const budgeted = await startWorker({ maxRequests: '4', readers: 'per-connection' });
    const name = channel('budget');
    const source = new EventSource(`${budgeted.url}/stream?channel=${name}`);
    let connections = 0;
    const received: string[] = [];
    source.addEventListener('sse:ready', () => connections++);
    source.addEventListener('message', (event) => received.push(event.data));
    try {
      await until(() => connections === 1, 'the first connection');
      const sent: string[] = [];
      for (let n = 1; n <= 10; n++) {
        // Too large to ride along in the wake-up: each costs the stream a read, spending its budget.
        sent.push(`event ${n} ${LARGE}`);
        await publish(name, `event ${n} ${LARGE}`);
        await sleep(50);
      }
      await until(() => received.length >= 10, 'all ten events', 15_000);
      await publish(name, 'last'); // anything repeated would arrive before it
      await until(() => received.includes('last'), 'the last event', 15_000);
      expect(received).toEqual([...sent, 'last']);
      // sse:ready only comes on fresh connections; resumed ones are counted by the bridge.
      expect(budgeted.bridge.stats().subscriptions).toBeGreaterThan(1);
    } finally {
      source.close();
    }
  });
});
