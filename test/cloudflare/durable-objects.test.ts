/**
 * edge-sse/cloudflare in real workerd (miniflare): the Worker admits each stream and hands it to
 * the Durable Object of its channel set, which holds ONE upstream reader and fans it out. Redis is
 * the real one, behind the project's bridge; the bridge counts the Worker's requests and
 * subscriptions, so "one reader" is what Redis's HTTP front door saw, not what the code believes.
 * One workerd for the whole file; each test has channels of its own.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upstashBackend } from '../../src/backends/upstash.ts';
import type { Bridge } from '../../src/bridge/index.ts';
import { type Backend, createChannelToken, sendEvent } from '../../src/index.ts';
import { REDIS_URL, deleteKeysWithPrefix, uniquePrefix } from '../helpers/redis.ts';
import { SSEReader } from '../helpers/sse.ts';
import { sleep, until } from '../examples/helpers.ts';
import { type Proxy, TOKEN, type Workerd, bundleFixture, startBridge, startProxy, startWorkerd } from './workerd.ts';

const RUN = randomBytes(4).toString('hex');
const channel = (name: string) => `cf-${RUN}-${name}`;
const PREFIX = uniquePrefix('cf-objects');
const SECRET = randomBytes(24).toString('hex');
/** Over the 32 KB a wake-up carries: every reader must read it from the stream (one request each). */
const LARGE = 'x'.repeat(40 * 1024);

/** Only the Worker talks to this bridge (through the proxy): its counters are the Worker's. */
let workerBridge: Bridge;
let proxy: Proxy;
/** The test publishes through a bridge of its own, so publishing never counts as the Worker's. */
let publisherBridge: Bridge;
let publisher: Backend;
let workerd: Workerd;

beforeAll(async () => {
  const script = bundleFixture();
  [workerBridge, publisherBridge] = await Promise.all([startBridge(), startBridge()]);
  proxy = await startProxy(workerBridge);
  publisher = upstashBackend({ url: publisherBridge.url, token: TOKEN, prefix: PREFIX });
  workerd = await startWorkerd(await script, { BRIDGE_URL: proxy.url, BRIDGE_TOKEN: TOKEN, PREFIX, TOKEN_SECRET: SECRET });
}, 60_000);

afterAll(async () => {
  await workerd?.dispose();
  await proxy?.close();
  await Promise.all([workerBridge?.close(), publisherBridge?.close()]);
  const redis = new Redis(REDIS_URL);
  await deleteKeysWithPrefix(redis, PREFIX);
  redis.disconnect();
});

const publish = (name: string, data: string, type = 'message') => sendEvent(type, data, { backend: publisher, channel: name });
const subscriptions = () => workerBridge.stats().openSubscriptions;

interface Stream {
  res: Response;
  reader: SSEReader;
  leave(): void;
}

/** A raw stream (fetch), to read headers, retry hints and comments, and to leave whenever the test wants. */
async function open(path: string, names: string[], headers: Record<string, string> = {}, query = ''): Promise<Stream> {
  const controller = new AbortController();
  const search = names.map((name) => `channel=${encodeURIComponent(name)}`).join('&');
  const res = await fetch(`${workerd.url}${path}?${search}${query}`, { headers, signal: controller.signal });
  const reader = new SSEReader(res);
  return { res, reader, leave: () => controller.abort() };
}

async function listen(path: string, names: string[], headers: Record<string, string> = {}): Promise<Stream> {
  const stream = await open(path, names, headers);
  expect(stream.res.status).toBe(200);
  await stream.reader.waitFor(() => stream.reader.events.length > 0 || stream.reader.ended, 'the stream to start');
  return stream;
}

const dataOf = (stream: Stream) => stream.reader.messages.map((event) => event.data);

describe('one upstream reader per channel (the premise: an object shares one I/O context between requests)', () => {
  it('20 listeners on one channel hold ONE upstream subscription; the per-connection path holds 20', async () => {
    const name = channel('twenty');
    const before = workerBridge.stats().requests;
    const streams = await Promise.all(Array.from({ length: 20 }, () => listen('/stream', [name])));
    try {
      expect(streams.every((stream) => stream.reader.events.some((event) => event.event === 'sse:ready'))).toBe(true);
      expect(subscriptions()).toBe(1);
      // Subscribing and reading the head: 2 requests for 20 listeners.
      expect(workerBridge.stats().requests - before).toBe(2);

      await publish(name, 'small');
      await publish(name, LARGE);
      await Promise.all(streams.map((stream) => stream.reader.waitForMessages(2)));
      for (const stream of streams) expect(dataOf(stream)).toEqual(['small', LARGE]);
      // The small event rode along in the wake-up; the large one was read once, for all 20.
      expect(workerBridge.stats().requests - before).toBe(3);
      expect(subscriptions()).toBe(1);
    } finally {
      for (const stream of streams) stream.leave();
    }

    const plainName = channel('twenty-plain');
    const plain = await Promise.all(Array.from({ length: 20 }, () => listen('/plain/stream', [plainName])));
    try {
      await until(() => subscriptions() >= 20, '20 subscriptions on the per-connection path');
      expect(subscriptions()).toBeGreaterThanOrEqual(20);
    } finally {
      for (const stream of plain) stream.leave();
    }
  });
});
