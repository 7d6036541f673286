/**
 * edge-sse/resumable beside Vercel's resumable-stream 2.2.13, in the same run, over the real
 * Redis: over TCP (ioredis) and over HTTP (the Upstash REST protocol, through edge-sse bridges).
 * One stream: 1,000 chunks of ~20 characters, one every 2 ms (~2 s), read by its first client.
 *
 * - nobody resumes: what the producer sends to Redis;
 * - one follower resumes mid-stream (after chunk 500): requests of both sides, the time from the
 *   resume call to its first byte, and chunk → follower latency for the chunks produced after it;
 * - resuming after the producer finished: requests, and the time to the answer (null for both by
 *   default; edge-sse with replayFinished also the whole stream).
 *
 * Requests are counted where each side talks to Redis: over HTTP at the side's own bridge, over
 * TCP at the client (edge-sse: its backend's round trips; resumable-stream: every command its
 * publisher and subscriber send, through counting adapters of its generic interface).
 */
import { Redis as UpstashRedis } from '@upstash/redis';
import { Redis as IORedis } from 'ioredis';
import { createResumableStreamContext as createReference } from 'resumable-stream/generic';
import type { Publisher, Subscriber } from 'resumable-stream/generic';
import type { Bridge } from '../src/bridge/index.js';
import type { Backend } from '../src/index.js';
import { REDIS_URL, RUN_PREFIX, TOKEN, cleanUp, prefixFor, startBridge } from './redis-common.js';
import { percentile, median, sleep } from './stats.js';
import { formatMs, formatNumber, formatRatio, printTable } from './table.js';
import { redis as edgeRedis, upstash as edgeUpstash } from './subject.js';

const resumableModule = (await import(new URL('../dist/resumable.js', import.meta.url).href)) as typeof import('../src/resumable/index.js');

const CHUNKS = 1000;
const EVERY_MS = 2;
/** 1.12 s in: halfway between two of an unfollowed producer's 250-ms appends, as a resume usually falls. */
const RESUME_AT = 560;
const ROUNDS = 3;
const chunk = (n: number) => `<${String(n).padStart(4, '0')}>${'lorem ipsum '.slice(0, 14)}`;
const CHUNK_ID = /<(\d{4})>/g;

/** The part of either library's context the bench uses. */
interface Context {
  resumableStream(id: string, make: () => ReadableStream<string>): Promise<ReadableStream<string> | null>;
  resumeExistingStream(id: string): Promise<ReadableStream<string> | null | undefined>;
}

interface Setup {
  name: string;
  transport: 'TCP' | 'HTTP';
  producer: Context;
  follower: Context;
  /** edge-sse only: a follower that replays finished streams. */
  replaying?: Context;
  producerRequests(): number;
  followerRequests(): number;
  /** What the producer handed waitUntil: settled once its stream is stored to the end. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

function waitUntilTracker() {
  let pending: Promise<unknown>[] = [];
  return {
    waitUntil: (promise: Promise<unknown>) => void pending.push(promise.catch(() => undefined)),
    async settled() {
      const all = pending;
      pending = [];
      await Promise.all(all);
    },
  };
}

// ---- edge-sse -------------------------------------------------------------------------------

async function edgeSetup(transport: 'TCP' | 'HTTP'): Promise<Setup> {
  const prefix = prefixFor(`resumable-edge-${transport}`);
  const bridges: Bridge[] = transport === 'HTTP' ? await Promise.all([startBridge(), startBridge()]) : [];
  const backend = (side: number): Backend =>
    transport === 'TCP'
      ? edgeRedis.redisBackend({ url: REDIS_URL, prefix })
      : edgeUpstash.upstashBackend({ url: bridges[side]!.url, token: TOKEN, prefix });
  const [producerBackend, followerBackend] = [backend(0), backend(1)];
  const tracker = waitUntilTracker();
  const make = (b: Backend, replayFinished = false) =>
    resumableModule.createResumableStreamContext({ backend: b, waitUntil: tracker.waitUntil, replayFinished });
  const count = (side: number, b: Backend) => () => (transport === 'HTTP' ? bridges[side]!.stats().requests : b.stats().requests);
  return {
    name: 'edge-sse/resumable',
    transport,
    producer: make(producerBackend),
    follower: make(followerBackend),
    replaying: make(followerBackend, true),
    producerRequests: count(0, producerBackend),
    followerRequests: count(1, followerBackend),
    settled: tracker.settled,
    async close() {
      await producerBackend.close();
      await followerBackend.close();
      await Promise.all(bridges.map((bridge) => bridge.close()));
    },
  };
}

// ---- resumable-stream 2.2.13, through its generic Publisher/Subscriber interface -----------

interface Counter {
  commands: number;
}

function ioredisAdapters(counter: Counter): { publisher: Publisher; subscriber: Subscriber; close(): void } {
  const commands = new IORedis(REDIS_URL);
  const listening = new IORedis(REDIS_URL);
  const handlers = new Map<string, (message: string) => void>();
  listening.on('message', (channel: string, message: string) => handlers.get(channel)?.(message));
  return {
    publisher: {
      connect: async () => undefined,
      publish: (channel, message) => (counter.commands++, commands.publish(channel, message)),
      set: (key, value, options) => (
        counter.commands++, options?.EX ? commands.set(key, value, 'EX', options.EX) : commands.set(key, value)
      ),
      get: (key) => (counter.commands++, commands.get(key)),
      incr: (key) => (counter.commands++, commands.incr(key)),
    },
    subscriber: {
      connect: async () => undefined,
      async subscribe(channel, callback) {
        counter.commands++;
        handlers.set(channel, callback);
        await listening.subscribe(channel);
      },
      async unsubscribe(channel) {
        counter.commands++;
        handlers.delete(channel);
        await listening.unsubscribe(channel);
      },
    },
    close() {
      commands.disconnect();
      listening.disconnect();
    },
  };
}

/**
 * What an app would write for @upstash/redis (resumable-stream ships no adapter): messages go
 * as JSON, since the Upstash subscribe stream is line-based and resumable-stream's DONE message
 * holds line breaks; a subscription resolves once the server confirmed it.
 */
function upstashAdapters(bridge: Bridge): { publisher: Publisher; subscriber: Subscriber; close(): void } {
  const plain = new UpstashRedis({ url: bridge.url, token: TOKEN, automaticDeserialization: false, enableTelemetry: false });
  const parsing = new UpstashRedis({ url: bridge.url, token: TOKEN, enableTelemetry: false });
  const subscriptions = new Map<string, { unsubscribe(): Promise<void> }>();
  return {
    publisher: {
      connect: async () => undefined,
      publish: (channel, message) => plain.publish(channel, JSON.stringify(message)),
      set: (key, value, options) => (options?.EX ? plain.set(key, value, { ex: options.EX }) : plain.set(key, value)),
      get: (key) => plain.get<string>(key),
      incr: (key) => plain.incr(key),
    },
    subscriber: {
      connect: async () => undefined,
      subscribe(channel, callback) {
        const subscription = parsing.subscribe<string>([channel]);
        subscriptions.set(channel, subscription);
        subscription.on('message', ({ message }) => callback(message));
        return new Promise<void>((resolve) => subscription.on('subscribe', () => resolve()));
      },
      async unsubscribe(channel) {
        await subscriptions.get(channel)?.unsubscribe();
        subscriptions.delete(channel);
      },
    },
    close() {
      for (const subscription of subscriptions.values()) void subscription.unsubscribe();
    },
  };
}

async function referenceSetup(transport: 'TCP' | 'HTTP'): Promise<Setup> {
  const keyPrefix = `${RUN_PREFIX}:resumable-ref-${transport}`;
  const tracker = waitUntilTracker();
  const counters = [{ commands: 0 }, { commands: 0 }];
  const bridges: Bridge[] = transport === 'HTTP' ? await Promise.all([startBridge(), startBridge()]) : [];
  const adapters = [0, 1].map((side) => (transport === 'TCP' ? ioredisAdapters(counters[side]!) : upstashAdapters(bridges[side]!)));
  const make = (side: number) =>
    createReference({
      keyPrefix,
      waitUntil: tracker.waitUntil,
      publisher: adapters[side]!.publisher,
      subscriber: adapters[side]!.subscriber,
    }) as Context;
  const count = (side: number) => () => (transport === 'HTTP' ? bridges[side]!.stats().requests : counters[side]!.commands);
  return {
    name: 'resumable-stream 2.2.13',
    transport,
    producer: make(0),
    follower: make(1),
    producerRequests: count(0),
    followerRequests: count(1),
    settled: tracker.settled,
    async close() {
      for (const adapter of adapters) adapter.close();
      await Promise.all(bridges.map((bridge) => bridge.close()));
    },
  };
}

// ---- one stream -----------------------------------------------------------------------------

let streams = 0;

function tokenSource(sentAt: Float64Array): ReadableStream<string> {
  let next = 0;
  let started = 0;
  return new ReadableStream<string>({
    async pull(controller) {
      if (next === 0) started = performance.now();
      if (next >= CHUNKS) return controller.close();
      const wait = started + next * EVERY_MS - performance.now();
      if (wait > 0.5) await sleep(wait);
      sentAt[next] = performance.now();
      controller.enqueue(chunk(next++));
    },
  });
}

async function readAll(stream: ReadableStream<string>, onText: (text: string) => void = () => undefined): Promise<void> {
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    onText(value);
  }
}

interface StreamResult {
  producerRequests: number;
  followerRequests: number;
  firstByteMs?: number;
  latencies: number[];
  followerChunks?: number;
}

async function oneStream(setup: Setup, resume: 'none' | 'mid-stream' | 'after-finish' | 'replay'): Promise<StreamResult> {
  const id = `bench-${process.pid}-${streams++}`;
  const sentAt = new Float64Array(CHUNKS).fill(NaN);
  const [producerBefore, followerBefore] = [setup.producerRequests(), setup.followerRequests()];
  const own = await setup.producer.resumableStream(id, () => tokenSource(sentAt));
  if (!own) throw new Error(`${setup.name}: the stream was not created`);
  const ownRead = readAll(own);
  const result: StreamResult = { producerRequests: 0, followerRequests: 0, latencies: [] };
  let following: Promise<void> = Promise.resolve();
  if (resume === 'mid-stream') {
    while (Number.isNaN(sentAt[RESUME_AT]!)) await sleep(1);
    following = follow(setup.follower, id, result, sentAt);
    await following;
  }
  await ownRead;
  await setup.settled();
  await following;
  if (resume === 'after-finish' || resume === 'replay') {
    await follow(resume === 'replay' ? setup.replaying! : setup.follower, id, result, sentAt);
  }
  await sleep(50); // let unsubscribes and the like land before counting
  result.producerRequests = setup.producerRequests() - producerBefore;
  result.followerRequests = setup.followerRequests() - followerBefore;
  return result;
}

/** Resumes `id`; records the time to the first byte (or to the null answer) and each new chunk's latency. */
async function follow(context: Context, id: string, result: StreamResult, sentAt: Float64Array): Promise<void> {
  const asked = performance.now();
  const stream = await context.resumeExistingStream(id);
  if (!stream) {
    result.firstByteMs = performance.now() - asked;
    return;
  }
  const seen = new Set<number>();
  await readAll(stream, (text) => {
    const now = performance.now();
    result.firstByteMs ??= now - asked;
    for (const [, number] of text.matchAll(CHUNK_ID)) {
      const n = Number(number);
      if (seen.has(n)) continue;
      seen.add(n);
      if (sentAt[n]! >= asked) result.latencies.push(now - sentAt[n]!);
    }
  });
  result.followerChunks = seen.size;
}

// ---- the run --------------------------------------------------------------------------------

interface Tally {
  none: number[];
  midProducer: number[];
  midFollower: number[];
  midFirstByte: number[];
  latencies: number[];
  finishedRequests: number[];
  finishedMs: number[];
  replayRequests: number[];
  replayMs: number[];
}

const emptyTally = (): Tally => ({
  none: [],
  midProducer: [],
  midFollower: [],
  midFirstByte: [],
  latencies: [],
  finishedRequests: [],
  finishedMs: [],
  replayRequests: [],
  replayMs: [],
});

async function measure(setup: Setup, tally: Tally): Promise<void> {
  const none = await oneStream(setup, 'none');
  tally.none.push(none.producerRequests + none.followerRequests);
  const mid = await oneStream(setup, 'mid-stream');
  if (mid.followerChunks !== CHUNKS)
    throw new Error(`${setup.name} ${setup.transport}: the follower got ${mid.followerChunks} of ${CHUNKS} chunks`);
  tally.midProducer.push(mid.producerRequests);
  tally.midFollower.push(mid.followerRequests);
  tally.midFirstByte.push(mid.firstByteMs!);
  tally.latencies.push(...mid.latencies);
  const finished = await oneStream(setup, 'after-finish');
  tally.finishedRequests.push(finished.producerRequests + finished.followerRequests - none.producerRequests);
  tally.finishedMs.push(finished.firstByteMs!);
  if (setup.replaying) {
    const replay = await oneStream(setup, 'replay');
    tally.replayRequests.push(replay.producerRequests + replay.followerRequests - none.producerRequests);
    tally.replayMs.push(replay.firstByteMs!);
  }
}

export async function run(): Promise<void> {
  const setups = [await referenceSetup('TCP'), await edgeSetup('TCP'), await referenceSetup('HTTP'), await edgeSetup('HTTP')];
  const tallies = new Map(setups.map((setup) => [setup, emptyTally()]));
  try {
    for (const setup of setups) await oneStream(setup, 'mid-stream'); // warm: connections, scripts, app ids
    for (let round = 0; round < ROUNDS; round++) {
      for (const setup of round % 2 === 0 ? setups : [...setups].reverse()) await measure(setup, tallies.get(setup)!);
    }
  } finally {
    for (const setup of setups) await setup.close();
    await cleanUp();
  }
  const unit = (setup: Setup) => (setup.transport === 'TCP' ? 'cmds' : 'reqs');
  printTable(
    `Resumable streams: ${formatNumber(CHUNKS)} chunks of ~20 characters, one every ${EVERY_MS} ms (~2 s); Redis requests per stream (median of ${ROUNDS})`,
    [
      'library',
      'over',
      'unit',
      'nobody resumes',
      'one follower: producer',
      'follower',
      'total',
      'resume after finish',
      'replay after finish',
    ],
    setups.map((setup) => {
      const t = tallies.get(setup)!;
      return [
        setup.name,
        setup.transport,
        unit(setup),
        median(t.none),
        median(t.midProducer),
        median(t.midFollower),
        median(t.midProducer.map((p, i) => p + t.midFollower[i]!)),
        median(t.finishedRequests),
        t.replayRequests.length > 0 ? median(t.replayRequests) : '— (null)',
      ];
    }),
  );
  printTable(
    `Resumable streams: latency (${ROUNDS} rounds; a follower resumes after chunk ${RESUME_AT})`,
    ['library', 'over', 'resume → 1st byte', 'chunk → follower p50', 'p99', 'finished: resume → null', 'replay → 1st byte'],
    setups.map((setup) => {
      const t = tallies.get(setup)!;
      return [
        setup.name,
        setup.transport,
        formatMs(median(t.midFirstByte)),
        formatMs(percentile(t.latencies, 50)),
        formatMs(percentile(t.latencies, 99)),
        formatMs(median(t.finishedMs)),
        t.replayMs.length > 0 ? formatMs(median(t.replayMs)) : '—',
      ];
    }),
  );
  console.log(
    "\nOver TCP, resumable-stream's are commands its adapters sent; edge-sse's are its round trips (a script run or a\n" +
      "pipeline each; a follower's blocking XREADs count once per answer). Over HTTP, requests at each side's bridge\n" +
      '(a /subscribe stream counts once). "resume after finish": the follower\'s requests when the stream is done.',
  );
  goals(setups, tallies);
}

function goals(setups: Setup[], tallies: Map<Setup, Tally>): void {
  const streamSeconds = (CHUNKS * EVERY_MS) / 1000;
  const allowance = Math.ceil(streamSeconds / 0.25);
  console.log('');
  for (const transport of ['TCP', 'HTTP'] as const) {
    const edge = tallies.get(setups.find((s) => s.transport === transport && s.name.startsWith('edge'))!)!;
    const reference = tallies.get(setups.find((s) => s.transport === transport && !s.name.startsWith('edge'))!)!;
    const idle = median(edge.none);
    const total = (t: Tally) => median(t.midProducer.map((p, i) => p + t.midFollower[i]!));
    const p50 = percentile(edge.latencies, 50);
    const firstByte = median(edge.midFirstByte) / median(reference.midFirstByte);
    console.log(
      `${transport}: nobody follows: ${idle} requests for ${streamSeconds} s (goal ≈ one per 250 ms = ${allowance} + a constant; ` +
        `resumable-stream ${median(reference.none)}): ${idle <= allowance + 3 ? 'MET' : 'MISSED'}\n` +
        `${transport}: with a follower: chunk → follower p50 ${formatMs(p50)} (goal ≤ 50 ms): ${p50 <= 50 ? 'MET' : 'MISSED'}; ` +
        `requests ${total(edge)} vs ${total(reference)} (goal fewer): ${total(edge) < total(reference) ? 'MET' : 'MISSED'}\n` +
        `${transport}: resume → first byte ${formatRatio(firstByte)} resumable-stream's (goal ≤ ×1.5): ${firstByte <= 1.5 ? 'MET' : 'MISSED'}`,
    );
  }
}
