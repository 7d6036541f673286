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
import { upstashBackend } from '../../src/backends/upstash/index.ts';
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
/** Earlier tests' objects let their readers go after their linger: counting starts from none. */
const noSubscriptionsLeft = () =>
  until(() => subscriptions() === 0, `earlier tests' readers to be released (${subscriptions()} open)`, 5000);

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

/** Leaves, and publishes once: workerd notices that a client left at the stream's next write. */
async function leaveAll(name: string, streams: Stream[]): Promise<void> {
  for (const stream of streams) stream.leave();
  await publish(name, 'to nobody');
}

describe('one upstream reader per channel (the premise: an object shares one I/O context between requests)', () => {
  it('20 listeners on one channel hold ONE upstream subscription; the per-connection path holds 20', async () => {
    await noSubscriptionsLeft();
    const name = channel('twenty');
    const first = await listen('/stream', [name]);
    // What the first listener cost (subscribing, reading the head): the other 19 add nothing.
    const connected = workerBridge.stats().requests;
    const streams = [first, ...(await Promise.all(Array.from({ length: 19 }, () => listen('/stream', [name]))))];
    try {
      expect(streams.every((stream) => stream.reader.events.some((event) => event.event === 'sse:ready'))).toBe(true);
      expect(subscriptions()).toBe(1);
      expect(workerBridge.stats().requests).toBe(connected);

      await publish(name, 'small');
      await publish(name, LARGE);
      await Promise.all(streams.map((stream) => stream.reader.waitForMessages(2)));
      for (const stream of streams) expect(dataOf(stream)).toEqual(['small', LARGE]);
      // The small event rode along in the wake-up; the large one was read once, for all 20.
      expect(workerBridge.stats().requests).toBe(connected + 1);
      expect(subscriptions()).toBe(1);
    } finally {
      await leaveAll(name, streams);
    }
    await noSubscriptionsLeft();

    const plainName = channel('twenty-plain');
    const plain = await Promise.all(Array.from({ length: 20 }, () => listen('/plain/stream', [plainName])));
    try {
      await until(() => subscriptions() >= 20, '20 subscriptions on the per-connection path');
      expect(subscriptions()).toBe(20);
    } finally {
      await leaveAll(plainName, plain);
    }
  });
});

describe('the same semantics as on Node', () => {
  it('resumes with Last-Event-ID: a reconnecting client gets exactly what it missed, and the reader stays', async () => {
    const name = channel('resume');
    const first = await listen('/linger/stream', [name]);
    await publish(name, 'seen');
    await first.reader.waitForMessages(1);
    const lastId = first.reader.messages[0]!.id!;
    const subscribed = workerBridge.stats().subscriptions;
    first.leave();
    await publish(name, 'missed 1');
    await publish(name, LARGE);
    const second = await listen('/linger/stream', [name], { 'Last-Event-ID': lastId });
    try {
      await second.reader.waitForMessages(2);
      await publish(name, 'live');
      await second.reader.waitForMessages(3);
      expect(dataOf(second)).toEqual(['missed 1', LARGE, 'live']);
      // Back within the linger: the object's reader was still there.
      expect(workerBridge.stats().subscriptions).toBe(subscribed);
    } finally {
      await leaveAll(name, [second]);
    }
  });

  it('ends the stream after maxDurationMs (jittered), with heartbeats meanwhile; EventSource resumes and loses nothing', async () => {
    const name = channel('deadline');
    const { EventSource } = await import('eventsource');
    const source = new EventSource(`${workerd.url}/short/stream?channel=${name}`);
    const received: string[] = [];
    let opened = 0;
    source.addEventListener('open', () => opened++);
    source.addEventListener('message', (event) => received.push(event.data));
    const heartbeat = await open('/short/stream', [name]);
    try {
      await until(() => opened === 1, 'the first connection');
      const sent: string[] = [];
      for (let n = 0; n < 12; n++) {
        sent.push(`event ${n}`);
        await publish(name, `event ${n}`);
        await sleep(250);
      }
      // 3 s of publishing through streams that end after 1.2–1.5 s: at least one reconnection.
      await until(() => received.length >= sent.length, 'every event', 10_000);
      expect(received).toEqual(sent);
      expect(opened).toBeGreaterThan(1);
      await heartbeat.reader.waitForEnd(3000);
      expect(heartbeat.reader.comments.length).toBeGreaterThan(0); // ': ' every 300 ms of silence
    } finally {
      source.close();
      heartbeat.leave();
    }
  });

  it("a client's disconnect reaches the object (request.signal), and after the linger the reader is released", async () => {
    await noSubscriptionsLeft();
    const name = channel('leave');
    const stream = await listen('/linger/stream', [name]);
    await until(() => subscriptions() === 1, 'the subscription');
    stream.leave();
    // workerd notices a client that left at the stream's next write.
    await publish(name, 'to nobody');
    const closed = new RegExp(`object closed ${name} client at (\\d+)`);
    await until(() => closed.test(workerd.logs()), "the object's onDisconnect('client')");
    const closedAt = Number(closed.exec(workerd.logs())![1]);
    await until(() => subscriptions() === 0, 'the reader to be released after the linger', 10_000);
    // lingerMs 3000: the reader outlived its last listener that long, then went.
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(2900);
  });

  it('a listener back within the linger finds the reader still there: no new subscription', async () => {
    const name = channel('linger');
    const first = await listen('/linger/stream', [name]);
    first.leave();
    await publish(name, 'to nobody');
    await until(() => workerd.logs().includes(`object closed ${name} client`), 'the object to hear the client leave');
    const subscribed = workerBridge.stats().subscriptions;
    const second = await listen('/linger/stream', [name]);
    try {
      await publish(name, 'back');
      await second.reader.waitForMessages(1);
      expect(workerBridge.stats().subscriptions).toBe(subscribed);
    } finally {
      await leaveAll(name, [second]);
    }
  });

  it('stats(): the object reports its streams, its one reader and its subscription', async () => {
    const name = channel('stats');
    const streams = await Promise.all([1, 2, 3].map(() => listen('/stream', [name])));
    try {
      await publish(name, 'counted');
      await Promise.all(streams.map((stream) => stream.reader.waitForMessages(1)));
      const stats = (await (await fetch(`${workerd.url}/stats?channel=${name}`)).json()) as Record<string, number>;
      expect(stats).toMatchObject({ openStreams: 3, readers: 1, subscriptions: 1, eventsDelivered: 3 });
    } finally {
      await leaveAll(name, streams);
    }
  });

  it('no subrequest budget loop: a stream served by the object outlives 60 reads without ending', async () => {
    const name = channel('no-budget');
    const stream = await listen('/stream', [name]);
    try {
      for (let n = 0; n < 60; n++) await publish(name, `${n} ${LARGE}`);
      await stream.reader.waitForMessages(60, 20_000);
      expect(stream.reader.ended).toBe(false);
      expect(stream.reader.events.filter((event) => event.event === 'sse:ready')).toHaveLength(1);
    } finally {
      await leaveAll(name, [stream]);
    }
  });

  it('closes a listener that stops reading once its queue passes maxQueuedBytes; the others go on', async () => {
    const name = channel('slow');
    const { connect } = await import('node:net');
    const { port } = new URL(workerd.url);
    const stalled = connect(Number(port), '127.0.0.1');
    stalled.write(`GET /tight/stream?channel=${name} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    stalled.once('data', () => stalled.pause()); // reads the headers, then nothing more
    const reading = await listen('/tight/stream', [name]);
    try {
      let published = 0;
      // Events small enough for a reading client to take each before the next (the queue stays far
      // below the cap), but never taken by the stalled one.
      const event = 'y'.repeat(4096);
      for (let n = 0; n < 3000 && !workerd.logs().includes(`object closed ${name} slow-client`); n++) {
        await publish(name, `${n} ${event}`);
        published++;
      }
      await until(() => workerd.logs().includes(`object closed ${name} slow-client`), 'the stalled stream to be closed');
      await reading.reader.waitForMessages(published);
      expect(reading.reader.ended).toBe(false);
      expect(workerd.logs().match(new RegExp(`object closed ${name} slow-client`, 'g'))).toHaveLength(1);
    } finally {
      stalled.destroy();
      await leaveAll(name, [reading]);
    }
  }, 60_000);
});

describe('multi-channel connections: one object per channel set, each channel relayed from its own object', () => {
  it('a, [a, b] and b share two upstream subscriptions; [a, b] gets both, with composite cursors, and resumes losing nothing', async () => {
    await noSubscriptionsLeft();
    const [a, b] = [channel('multi-a'), channel('multi-b')].sort() as [string, string];
    const onlyA = await listen('/stream', [a]);
    const both = await listen('/stream', [b, a]); // any order: the channels are sorted
    const onlyB = await listen('/stream', [b]);
    try {
      expect(subscriptions()).toBe(2);
      await publish(a, 'a1');
      await publish(b, LARGE);
      await publish(a, 'a2');
      await both.reader.waitForMessages(3);
      await onlyA.reader.waitForMessages(2);
      await onlyB.reader.waitForMessages(1);
      // In order within each channel; across channels, as each arrives (as on Node).
      expect(dataOf(both).filter((data) => data !== LARGE)).toEqual(['a1', 'a2']);
      expect(dataOf(both)).toContain(LARGE);
      expect(dataOf(onlyA)).toEqual(['a1', 'a2']);
      // One position per channel, in sorted order.
      const [idA, idB] = both.reader.messages.at(-1)!.id!.split(',');
      expect(idA).toBe(onlyA.reader.messages.at(-1)!.id);
      expect(idB).toBe(onlyB.reader.messages.at(-1)!.id);
      expect(subscriptions()).toBe(2);

      const cursor = both.reader.messages.at(-1)!.id!;
      both.leave();
      await publish(b, 'b missed');
      // Order across channels holds to the millisecond (sequence numbers count per channel).
      await new Promise((resolve) => setTimeout(resolve, 3));
      await publish(a, 'a missed');
      const resumed = await listen('/stream', [a, b], { 'Last-Event-ID': cursor });
      try {
        await resumed.reader.waitForMessages(2);
        // What was missed comes merged by id, across channels.
        expect(dataOf(resumed)).toEqual(['b missed', 'a missed']);
        await publish(b, 'b live');
        await resumed.reader.waitForMessages(3);
        expect(dataOf(resumed)).toEqual(['b missed', 'a missed', 'b live']);
      } finally {
        resumed.leave();
      }
    } finally {
      onlyA.leave();
      onlyB.leave();
      await publish(a, 'to nobody');
      await publish(b, 'to nobody');
    }
    await noSubscriptionsLeft();
  });
});

describe('multi-channel relays', () => {
  it('relay events exactly: multi-line data, JSON data (its cursor marker) and types arrive as a direct stream gets them', async () => {
    const [a, b] = [channel('exact-a'), channel('exact-b')].sort() as [string, string];
    const direct = await listen('/stream', [a]);
    const both = await listen('/stream', [a, b]);
    try {
      await publish(a, 'line 1\nline 2\r\nline 3\rline 4', 'multi');
      await sendEvent('object', { nested: { emoji: '🎉', text: 'é' } }, { backend: publisher, channel: a });
      await publish(a, ' leading space', 'spaced');
      await direct.reader.waitForMessages(3);
      await both.reader.waitForMessages(3);
      const view = (stream: Stream) => stream.reader.messages.map(({ event, data, id }) => ({ event, data, json: id!.endsWith(';json') }));
      expect(view(both)).toEqual(view(direct));
      expect(view(both)[1]).toEqual({ event: 'object', data: JSON.stringify({ nested: { emoji: '🎉', text: 'é' } }), json: true });
    } finally {
      await leaveAll(a, [direct, both]);
    }
  });

  it("the relays follow their channel objects' deadlines (every ~1.5 s here) without losing or repeating an event", async () => {
    const [a, b] = [channel('relay-a'), channel('relay-b')].sort() as [string, string];
    const { EventSource } = await import('eventsource');
    const source = new EventSource(`${workerd.url}/short/stream?channel=${a}&channel=${b}`);
    const received: string[] = [];
    source.addEventListener('message', (event) => received.push(event.data));
    try {
      await new Promise((resolve) => source.addEventListener('sse:ready', resolve, { once: true }));
      const sent: string[] = [];
      for (let n = 0; n < 16; n++) {
        const name = n % 2 === 0 ? a : b;
        sent.push(`${name} ${n}`);
        await publish(name, `${name} ${n}`);
        await sleep(250);
      }
      // A last event on each channel: anything repeated would come before it.
      await publish(a, 'end');
      await publish(b, 'end');
      await until(() => received.filter((data) => data === 'end').length === 2, 'both last events', 10_000);
      expect(received.filter((data) => data !== 'end')).toEqual(sent);
    } finally {
      source.close();
    }
  });
});

describe('an Upstash outage', () => {
  it('a dropped subscription is reconnected by the object: its listeners stay and miss nothing', async () => {
    await noSubscriptionsLeft();
    const name = channel('drop');
    const streams = await Promise.all([1, 2].map(() => listen('/stream', [name])));
    try {
      await publish(name, 'before');
      await Promise.all(streams.map((stream) => stream.reader.waitForMessages(1)));
      const subscribed = workerBridge.stats().subscriptions;
      proxy.cut(); // every connection to the bridge drops, the subscription with them
      await publish(name, 'while reconnecting');
      await publish(name, LARGE);
      await until(() => workerBridge.stats().subscriptions > subscribed, 'the object to subscribe again');
      await Promise.all(streams.map((stream) => stream.reader.waitForMessages(3)));
      for (const stream of streams) {
        expect(dataOf(stream)).toEqual(['before', 'while reconnecting', LARGE]);
        expect(stream.reader.ended).toBe(false);
      }
      expect(subscriptions()).toBe(1);
    } finally {
      await leaveAll(name, streams);
    }
  });

  it('when Upstash stays away, streams end with a retry hint; once it is back, EventSource resumes and loses nothing', async () => {
    await noSubscriptionsLeft();
    const name = channel('outage');
    const { EventSource } = await import('eventsource');
    const source = new EventSource(`${workerd.url}/stream?channel=${name}`);
    const received: string[] = [];
    let errors = 0;
    source.addEventListener('message', (event) => received.push(event.data));
    source.addEventListener('error', () => errors++);
    const raw = await listen('/stream', [name]);
    try {
      await until(() => subscriptions() === 1, 'the subscription');
      await publish(name, 'before');
      await until(() => received.length === 1, 'the first event');
      proxy.down();
      await publish(name, 'during the outage');
      // readerRetryMs 1500: then the streams end, telling clients to come back after 400–600 ms.
      await raw.reader.waitForEnd(10_000);
      expect(raw.reader.retries.at(-1)).toBeGreaterThanOrEqual(400);
      expect(raw.reader.retries.at(-1)).toBeLessThanOrEqual(600);
      await until(() => errors > 0, 'EventSource to see its stream end');
      await publish(name, 'still down');
      proxy.up();
      await publish(name, 'back');
      await until(() => received.length === 4, 'every event', 15_000);
      expect(received).toEqual(['before', 'during the outage', 'still down', 'back']);
    } finally {
      proxy.up();
      source.close();
      raw.leave();
      await publish(name, 'to nobody');
    }
  }, 30_000);
});

describe('admission in the Worker, before any object is touched', () => {
  const objectLogs = () =>
    workerd
      .logs()
      .split('\n')
      .filter((line) => line.startsWith('object reached'));

  it('channel tokens: 401 without one, 403 for a channel it does not grant, and no object reached; a valid one streams', async () => {
    const name = channel('secure');
    const before = objectLogs().length;
    const missing = await fetch(`${workerd.url}/secure/stream?channel=${name}`);
    expect(missing.status).toBe(401);
    const token = await createChannelToken({ channels: [name], expiresIn: 60 }, SECRET);
    const other = await fetch(`${workerd.url}/secure/stream?channel=${channel('other')}&token=${token}`);
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: string }).error).toContain('does not grant');
    expect(objectLogs().length).toBe(before);

    const allowed = await open('/secure/stream', [name], {}, `&token=${token}`);
    try {
      expect(allowed.res.status).toBe(200);
      await allowed.reader.waitForReady();
      expect(objectLogs().length).toBe(before + 1);
    } finally {
      await leaveAll(name, [allowed]);
    }
  });

  it("the stream ends when the token expires; a client cannot extend it with the Worker's own header", async () => {
    const name = channel('expiry');
    const token = await createChannelToken({ channels: [name], expiresIn: 1 }, SECRET);
    const forged = { 'X-Edge-SSE-Expires-At': String(Date.now() + 3_600_000) };
    const stream = await open('/secure/stream', [name], forged, `&token=${token}`);
    expect(stream.res.status).toBe(200);
    await stream.reader.waitForEnd(3000);
    expect(workerd.logs()).toContain(`object closed ${name} expired`);
  });

  it('a client cannot shorten a stream it has no authorize for with that header either', async () => {
    const name = channel('forged');
    const stream = await listen('/stream', [name], { 'X-Edge-SSE-Expires-At': '1' });
    try {
      await publish(name, 'still open');
      await stream.reader.waitForMessages(1);
      expect(stream.reader.ended).toBe(false);
    } finally {
      await leaveAll(name, [stream]);
    }
  });

  it('answers bad requests as createStreamHandler does: 400, 405 and CORS, without reaching an object', async () => {
    const before = objectLogs().length;
    const badChannel = await fetch(`${workerd.url}/stream?channel=${encodeURIComponent('a b')}`);
    expect(badChannel.status).toBe(400);
    const badCursor = await fetch(`${workerd.url}/stream?channel=x`, { headers: { 'Last-Event-ID': 'nope' } });
    expect(badCursor.status).toBe(400);
    expect(((await badCursor.json()) as { error: string }).error).toContain('Last-Event-ID');
    const post = await fetch(`${workerd.url}/stream`, { method: 'POST' });
    expect(post.status).toBe(405);
    const preflight = await fetch(`${workerd.url}/stream`, { method: 'OPTIONS', headers: { Origin: 'https://app.example' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('Access-Control-Allow-Origin')).toBe('https://app.example');
    expect(objectLogs().length).toBe(before);
  });

  it("the object's answer comes back with the Worker's CORS headers, its body streaming through", async () => {
    const name = channel('cors');
    const stream = await listen('/stream', [name], { Origin: 'https://app.example' });
    try {
      expect(stream.res.headers.get('Access-Control-Allow-Origin')).toBe('https://app.example');
      expect(stream.res.headers.get('Content-Type')).toBe('text/event-stream; charset=utf-8');
      await publish(name, 'through');
      await stream.reader.waitForMessages(1);
    } finally {
      await leaveAll(name, [stream]);
    }
  });

  it('an object that cannot serve (a backend that is not shareable) says why; the client is told to come back', async () => {
    const res = await fetch(`${workerd.url}/broken/stream?channel=${channel('broken')}`);
    expect(res.status).toBe(200);
    const reader = new SSEReader(res);
    await reader.waitForEnd();
    expect(reader.retries[0]).toBeGreaterThanOrEqual(100);
    expect(reader.comments).toContain('stream object unavailable');
    expect(workerd.logs()).toMatch(/worker onError: .*createStreamObject: the backend must be shareable/);
  });

  it('a backend made outside createStreamObject serves one object; the next refuses it and says where to make it', async () => {
    const first = await listen('/shared/stream', [channel('shared-1')]);
    try {
      await first.reader.waitForReady();
      const res = await fetch(`${workerd.url}/shared/stream?channel=${channel('shared-2')}`);
      const second = new SSEReader(res);
      await second.waitForEnd();
      expect(second.comments).toContain('stream object unavailable');
      expect(workerd.logs()).toMatch(/worker onError: .*already serves another object.*create the backend inside the function/);
    } finally {
      await leaveAll(channel('shared-1'), [first]);
    }
  });
});
