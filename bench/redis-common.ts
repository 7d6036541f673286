/**
 * What the Redis benchmarks share: bridges in front of the local Redis, unique key prefixes
 * (deleted afterwards), and the two streaming subjects — edge-sse's handler on the Upstash
 * backend, and @upstash/realtime's `handle()` — opened in process and read as SSE text.
 */
import { randomBytes } from 'node:crypto';
import { Realtime, handle } from '@upstash/realtime';
import { Redis as UpstashRedis } from '@upstash/redis';
import { Redis as IORedis } from 'ioredis';
import * as z from 'zod';
import { type Bridge, createBridge } from '../src/bridge/index.js';
import type { SSE } from '../src/index.js';
import { core, upstash } from './subject.js';

export const REDIS_URL = 'redis://127.0.0.1:6379';
export const TOKEN = `bench-${randomBytes(12).toString('hex')}`;
/** Every key of this run starts with it; `cleanUp` deletes them all. */
export const RUN_PREFIX = `esse-bench-${process.pid}-${randomBytes(3).toString('hex')}`;
const BASE_URL = 'http://bench.local';

export type Mode = 'subscribe' | 'poll';

/** A bridge on the local Redis; `allow` adds commands to its default allowlist (e.g. EVAL). */
export function startBridge(allow: string[] = []): Promise<Bridge> {
  return createBridge({ token: TOKEN, redis: REDIS_URL, allow });
}

/** The requests a bridge received since `before`. */
/** A prefix under this run's, e.g. `esse-bench-123-ab12cd:idle-sub-100:`. */
export function prefixFor(name: string): string {
  return `${RUN_PREFIX}:${name}:`;
}

/** Deletes every key this run created (SCAN by prefix, never FLUSHALL). */
export async function cleanUp(): Promise<number> {
  const redis = new IORedis(REDIS_URL);
  let deleted = 0;
  try {
    for await (const keys of redis.scanStream({ match: `${RUN_PREFIX}:*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) deleted += await redis.unlink(...keys);
    }
  } finally {
    redis.disconnect();
  }
  return deleted;
}

// ---- reading SSE in process ----------------------------------------------------------------

/** One SSE frame (the text between blank lines), and whether it carries data or only comments. */
export interface Frame {
  text: string;
  hasData: boolean;
}

/**
 * Reads a Response body frame by frame until it ends, or until `signal` aborts: then it cancels
 * the body as a server does when the client leaves (realtime's stream ends only on cancel).
 */
export async function readFrames(body: ReadableStream<Uint8Array>, onFrame: (frame: Frame) => void, signal?: AbortSignal): Promise<void> {
  const reader = body.getReader();
  const cancel = () => void reader.cancel().catch(() => undefined);
  if (signal?.aborted) cancel();
  signal?.addEventListener('abort', cancel, { once: true });
  const decoder = new TextDecoder();
  let buffered = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffered.indexOf('\n\n')) !== -1) {
        const text = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        onFrame({ text, hasData: /^data:/m.test(text) });
      }
    }
  } catch {
    // Cancelled at teardown.
  }
}

/** A streaming connection opened in process; `ready` settles once it would receive an event. */
export interface Connection {
  ready: Promise<void>;
  ended: Promise<void>;
  close(): void;
}

function openConnection(
  handler: (request: Request) => Promise<Response | void>,
  url: string,
  isReady: (frame: Frame) => boolean,
  onFrame: (frame: Frame) => void,
  headers: Record<string, string> = {},
): Connection {
  const aborter = new AbortController();
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const ended = (async () => {
    const response = await handler(new Request(url, { signal: aborter.signal, headers }));
    if (!response?.ok || !response.body) throw new Error(`GET ${url}: ${response?.status ?? 'no response'}`);
    const onEachFrame = (frame: Frame) => {
      if (isReady(frame)) markReady();
      onFrame(frame);
    };
    await readFrames(response.body, onEachFrame, aborter.signal);
  })();
  ended.catch(() => markReady());
  return { ready: Promise.race([ready, ended]), ended: ended.catch(() => undefined), close: () => aborter.abort() };
}

// ---- edge-sse ------------------------------------------------------------------------------

export function edgeSSE(bridge: Bridge, prefix: string, mode: Mode = 'subscribe', shareReaders = true): SSE {
  return core.createSSE({ backend: upstash.upstashBackend({ url: bridge.url, token: TOKEN, prefix, mode }), shareReaders });
}

/**
 * An edge-sse stream on `channel`; a fresh one is ready at its `sse:ready` event. One resuming
 * from `lastEventId` (as EventSource reconnects) gets no such event, but its Response only comes
 * once the catch-up read is done, so its first frame means it is live.
 */
export function openEdge(sse: SSE, channel: string, onFrame: (frame: Frame) => void, lastEventId?: string): Connection {
  return openConnection(
    sse.handler,
    `${BASE_URL}/events?channel=${encodeURIComponent(channel)}`,
    (frame) => lastEventId !== undefined || frame.text.includes('event: sse:ready'),
    onFrame,
    lastEventId === undefined ? {} : { 'Last-Event-ID': lastEventId },
  );
}

/** The `id:` a frame carries, if any: what EventSource would send back as Last-Event-ID. */
export function frameId(frame: Frame): string | undefined {
  return /^id: ?(.*)$/m.exec(frame.text)?.[1];
}

// ---- @upstash/realtime 1.1 -----------------------------------------------------------------

/** What realtime apps declare: a schema per event (emit validates the data against it). */
const schema = { order: { updated: z.looseObject({ seq: z.number() }) } };

export type RealtimeInstance = Realtime<{ schema: typeof schema; redis: UpstashRedis }>;

/** A Realtime on an @upstash/redis client pointed at the bridge, as an app would make it. */
export function realtimeOn(bridge: Bridge): RealtimeInstance {
  const redis = new UpstashRedis({ url: bridge.url, token: TOKEN, enableTelemetry: false });
  return new Realtime({ schema, redis });
}

/**
 * A stream from realtime's route handler (`handle({ realtime })`, what its client connects to),
 * ready once it has subscribed and read the channel's history (the `connected` event comes
 * before that XRANGE, so allow it a moment).
 */
export function openRealtime(realtime: RealtimeInstance, channel: string, onFrame: (frame: Frame) => void): Connection {
  const connection = openConnection(
    handle({ realtime }),
    `${BASE_URL}/api/realtime?channel=${encodeURIComponent(channel)}`,
    (frame) => frame.text.includes('"type":"connected"'),
    onFrame,
  );
  return { ...connection, ready: connection.ready.then(() => new Promise((resolve) => setTimeout(resolve, 50))) };
}
