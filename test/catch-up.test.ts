/**
 * Catch-up: what a resuming connection missed, read from the store in batches. It keeps to the
 * same memory bound as live streaming (`maxQueuedBytes`), and several channels arrive in id order.
 */
import { type Socket, connect } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { Redis as IORedis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { redisBackend } from '../src/backends/redis/index.js';
import type { ChannelRead, StoredEvent } from '../src/backends/contract.js';
import { HistoryMerge, ReadSizer } from '../src/server/catch-up.js';
import { compareIds } from '../src/wire/ids.js';
import { type Backend, type CloseReason, type SSE, createSSE, memoryBackend } from '../src/index.js';
import { serve } from '../src/adapters/node.js';
import { REDIS_URL, deleteKeysWithPrefix, uniquePrefix } from './helpers/redis.js';
import { SSEReader, streamRequest } from './helpers/sse.js';
import { waitUntil } from './helpers/wait.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap and buffers this process holds, after collecting garbage. */
function heldBytes(): number {
  gc();
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

/** A client that sends its request and never reads a byte of the answer. */
function stalledClient(url: string, path: string, lastEventId: string): Socket {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.pause();
  socket.on('error', () => undefined);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nLast-Event-ID: ${lastEventId}\r\n\r\n`);
  return socket;
}

/** Resolves once `read()` has stopped changing for `quietMs`: the streams have sent what they will. */
async function settled(read: () => number, quietMs = 300): Promise<void> {
  let last = read();
  let since = Date.now();
  await waitUntil(() => {
    const now = read();
    if (now !== last) [last, since] = [now, Date.now()];
    return Date.now() - since >= quietMs;
  });
}

const KIB = 1024;
const MAX_QUEUED = 256 * KIB;
const EVENT_BYTES = 32 * KIB;
const HISTORY_EVENTS = 200; // 6.4 MB
const STALLED = 8;

describe('catch-up keeps to maxQueuedBytes', () => {
  const prefix = uniquePrefix('catch-up');
  let backend: Backend;
  let history: string[];

  beforeAll(async () => {
    backend = redisBackend({ url: REDIS_URL, prefix });
    const publisher = createSSE({ backend });
    history = [];
    for (let start = 0; start < HISTORY_EVENTS; start += 20) {
      const batch = Array.from({ length: 20 }, (_, n) => ({ type: 'big', data: `${start + n} `.padEnd(EVENT_BYTES, 'x'), channel: 'big' }));
      history.push(...(await publisher.sendEvents(batch)));
    }
  });
  afterAll(async () => {
    await backend.close();
    const redis = new IORedis(REDIS_URL);
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
  });

  /** keepAliveMs 3 s: a catch-up that cannot send is closed after two of them without a byte taken. */
  function handler(reasons: CloseReason[], keepAliveMs = 3000): SSE {
    return createSSE({ backend, maxQueuedBytes: MAX_QUEUED, keepAliveMs, onDisconnect: (_, reason) => reasons.push(reason) });
  }

  afterEach(() => void vi.useRealTimers());

  /**
   * The streams' timers run on a fake clock, Redis and the sockets on real time: the stalled
   * catch-ups wait for two keep-alives (6 s) that pass in no time, to the millisecond.
   */
  const fakeTimers = () => vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  async function closedAfterTwoKeepAlives(reasons: CloseReason[]): Promise<void> {
    const slow = () => reasons.filter((reason) => reason === 'slow-client').length;
    await vi.advanceTimersByTimeAsync(2 * 3000 - 1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(slow()).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    await waitUntil(() => slow() === STALLED, 5000);
  }

  it('edge-sse/node: clients that resume from 0-0 and never read hold about maxQueuedBytes each, then are closed', async () => {
    fakeTimers();
    const reasons: CloseReason[] = [];
    const sse = handler(reasons);
    const server = await serve(sse.handler);
    const sockets: Socket[] = [];
    try {
      const before = heldBytes();
      for (let n = 0; n < STALLED; n++) sockets.push(stalledClient(server.url, '/stream?channel=big', '0-0'));
      await waitUntil(() => sse.handler.stats().openStreams === STALLED);
      await settled(() => sse.handler.stats().eventsDelivered);
      const perClient = (heldBytes() - before) / STALLED;
      expect(sse.handler.stats().openStreams).toBe(STALLED);
      // Before the fix: one whole 100-event read (3.2 MB) each, and never closed.
      expect(perClient, `${Math.round(perClient / KIB)} KiB per stalled client`).toBeLessThan(3 * MAX_QUEUED);

      const fast = new SSEReader(await fetch(`${server.url}/stream?channel=big`, { headers: { 'Last-Event-ID': '0-0' } }));
      await fast.waitForMessages(HISTORY_EVENTS);
      expect(fast.messages.map((m) => m.id)).toEqual(history);
      await fast.cancel();
      await waitUntil(() => sse.handler.stats().openStreams === STALLED); // the fast one is gone

      await closedAfterTwoKeepAlives(reasons);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.close();
      await waitUntil(() => sse.handler.stats().openStreams === 0); // freed before the next test measures
    }
  });

  it('the fetch handler: bodies of resumed streams that nobody reads hold about maxQueuedBytes each, then are closed', async () => {
    fakeTimers();
    const reasons: CloseReason[] = [];
    const sse = handler(reasons);
    const before = heldBytes();
    const bodies: Response[] = [];
    try {
      for (let n = 0; n < STALLED; n++) bodies.push(await sse.handler(streamRequest('?channel=big', { 'Last-Event-ID': '0-0' })));
      await settled(() => sse.handler.stats().eventsDelivered);
      const perClient = (heldBytes() - before) / STALLED;
      expect(sse.handler.stats().openStreams).toBe(STALLED);
      // Before the fix: 6.6 MB each (a whole read, as strings and as frames), and never closed.
      expect(perClient, `${Math.round(perClient / KIB)} KiB per stalled client`).toBeLessThan(2 * MAX_QUEUED);
      await closedAfterTwoKeepAlives(reasons);
    } finally {
      await Promise.all(bodies.map((body) => body.body!.cancel().catch(() => undefined))); // errored once closed
    }
  });

  it('live events buffered while a stalled catch-up waits are bounded by bytes too', async () => {
    const reasons: CloseReason[] = [];
    const sse = handler(reasons, 60_000); // the stall timeout is out of the picture
    const body = await sse.handler(streamRequest('?channel=big', { 'Last-Event-ID': '0-0' }));
    await settled(() => sse.handler.stats().eventsDelivered);
    for (let n = 0; n < 12 && reasons.length === 0; n++) await sse.sendEvent('big', 'y'.repeat(EVENT_BYTES), { channel: 'big' });
    await waitUntil(() => reasons.length > 0, 5000);
    expect(reasons).toEqual(['slow-client']);
    await body.body!.cancel().catch(() => undefined);
  });
});

describe('catch-up across channels arrives in id order', () => {
  it('property: whatever the read sizes, the merge hands out every event up to the live positions once, in id order', () => {
    const ids = fc
      .uniqueArray(fc.integer({ min: 1, max: 400 }), { maxLength: 60 })
      .map((ms) => ms.sort((a, b) => a - b).map((n) => `${n}-0`));
    const channel = fc.record({ ids, until: fc.integer({ min: 0, max: 420 }) });
    fc.assert(
      fc.property(
        fc.array(channel, { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1 }),
        (channels, limits) => {
          const event = (id: string): StoredEvent => ({ id, type: 'n', data: '', json: false });
          const until = channels.map((c) => `${c.until}-0`);
          const merge = new HistoryMerge(
            channels.map((_, index) => index),
            channels.map(() => '0-0'),
            until,
          );
          const out: { channel: number; id: string }[] = [];
          for (let round = 0; !merge.done; round++) {
            const next = merge.next();
            if (next) {
              out.push({ channel: next.channel, id: next.event.id });
              continue;
            }
            const limit = limits[round % limits.length]!;
            const reads: ChannelRead[] = merge.toRead().map(({ channel: index, after }) => ({
              events: channels[index]!.ids.filter((id) => compareIds(id, after) > 0)
                .slice(0, limit)
                .map(event),
              head: channels[index]!.ids.at(-1) ?? '0-0',
            }));
            merge.take(reads, limit);
          }
          for (let n = 1; n < out.length; n++) expect(compareIds(out[n - 1]!.id, out[n]!.id)).toBeLessThanOrEqual(0);
          channels.forEach((c, index) => {
            const expected = c.ids.filter((id) => compareIds(id, until[index]!) <= 0);
            expect(out.filter((e) => e.channel === index).map((e) => e.id)).toEqual(expected);
          });
        },
      ),
    );
  });

  it('sizes reads by the bytes of the frames sent so far, at least one event and at most a batch', () => {
    const sizer = new ReadSizer(100);
    expect(sizer.limit(1024 * 1024, 1)).toBe(16); // nothing seen yet: as large as sendEvent allows (64 KiB)
    for (let n = 0; n < 10; n++) sizer.record(1000);
    expect(sizer.limit(50_000, 1)).toBe(50);
    expect(sizer.limit(50_000, 5)).toBe(10);
    expect(sizer.limit(1024 * 1024, 1)).toBe(100);
    expect(sizer.limit(10, 3)).toBe(1);
  });

  it('a 3-channel resume over an interleaved history longer than a read batch', async () => {
    let clock = 1_700_000_000_000;
    const sse = createSSE({ backend: memoryBackend({ now: () => clock++ }) });
    const published: string[] = [];
    for (let n = 0; n < 700; n++) {
      const channel = n < 300 ? (n % 4 === 3 ? 'b' : 'a') : n % 10 === 0 ? 'a' : n % 2 ? 'b' : 'c';
      await sse.sendEvent('n', `${channel}${n}`, { channel });
      published.push(`${channel}${n}`);
    }
    const reader = new SSEReader(await sse.handler(streamRequest('?channel=a&channel=b&channel=c', { 'Last-Event-ID': '0-0,0-0,0-0' })));
    await reader.waitForMessages(700);
    await reader.cancel();
    expect(reader.messages.map((m) => m.data)).toEqual(published);
  });

  it('stops at the live positions it joined at: what is published meanwhile comes in the live order', async () => {
    let clock = 1_700_000_000_000;
    const sse = createSSE({ backend: memoryBackend({ now: () => clock++ }), maxQueuedBytes: 16 * 1024 });
    for (let n = 0; n < 150; n++) await sse.sendEvent('n', `a${n} `.padEnd(200, '.'), { channel: 'a' });
    const quiet = await sse.sendEvent('n', 'b-before', { channel: 'b' });
    // a from the start (30 KB, more than a read batch), b at its head: the catch-up waits for this reader, which reads nothing yet.
    const response = await sse.handler(streamRequest('?channel=a&channel=b', { 'Last-Event-ID': `0-0,${quiet}` }));
    await settled(() => sse.handler.stats().eventsDelivered);
    await sse.sendEvent('n', 'b-live', { channel: 'b' });
    await sse.sendEvent('n', 'a-live', { channel: 'a' });
    const reader = new SSEReader(response);
    await reader.waitForMessages(152);
    await reader.cancel();
    const data = reader.messages.map((m) => m.data.replace(/ \.+$/, ''));
    expect(data).toEqual([...Array.from({ length: 150 }, (_, n) => `a${n}`), 'b-live', 'a-live']);
    const moved = reader.messages.map((m, n) => {
      const positions = m.id!.replace(';json', '').split(',');
      const previous = n === 0 ? ['0-0', quiet] : reader.messages[n - 1]!.id!.split(',');
      return positions.find((id, index) => id !== previous[index])!;
    });
    for (let n = 1; n < moved.length; n++) expect(compareIds(moved[n - 1]!, moved[n]!)).toBeLessThan(0);
  });
});
