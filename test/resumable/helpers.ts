import { Redis as IORedis } from 'ioredis';
import { afterAll } from 'vitest';
import { redisBackend } from '../../src/backends/redis/index.js';
import type { Backend } from '../../src/index.js';
import { memoryBackend } from '../../src/index.js';
import { useBridge } from '../helpers/bridge.js';
import { REDIS_URL, deleteKeysWithPrefix, uniquePrefix } from '../helpers/redis.js';

/** A source the test feeds by hand: `push` a chunk, `end` it, or `error` it. */
export function manualSource() {
  let controller!: ReadableStreamDefaultController<string>;
  let cancelled: unknown;
  const stream = new ReadableStream<string>({
    start: (c) => void (controller = c),
    cancel: (reason) => void (cancelled = reason ?? 'cancelled'),
  });
  return {
    stream,
    push: (text: string) => controller.enqueue(text),
    end: () => controller.close(),
    error: (error: unknown) => controller.error(error),
    get cancelled() {
      return cancelled;
    },
  };
}

/** A source of `chunks`, one every `everyMs`. */
export function timedSource(chunks: readonly string[], everyMs: number): ReadableStream<string> {
  let index = 0;
  return new ReadableStream<string>({
    async pull(controller) {
      if (index >= chunks.length) return controller.close();
      if (index > 0 && everyMs > 0) await new Promise((resolve) => setTimeout(resolve, everyMs));
      controller.enqueue(chunks[index++]!);
    },
  });
}

export async function readText(stream: ReadableStream<string>): Promise<string> {
  let text = '';
  for await (const chunk of stream as unknown as AsyncIterable<string>) text += chunk;
  return text;
}

/** Reads until `text` has at least `length` characters; leaves the stream open. */
export async function readUntil(reader: ReadableStreamDefaultReader<string>, length: number, seen = ''): Promise<string> {
  let text = seen;
  while (text.length < length) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`the stream ended after ${JSON.stringify(text)}`);
    text += value;
  }
  return text;
}

export interface Subject {
  name: string;
  /** Two backends on the same store: a producer's and a follower's (another instance). */
  pair(): { producer: Backend; follower: Backend };
}

/** Memory (one backend for both sides), Redis over TCP, and Upstash over HTTP through the bridge. */
export function subjects(scope: string): Subject[] {
  const bridge = useBridge(scope);
  const opened: Backend[] = [];
  const prefixes: string[] = [];
  afterAll(async () => {
    for (const backend of opened) await backend.close();
    const redis = new IORedis(REDIS_URL);
    for (const prefix of prefixes) await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
  });
  const track = (backend: Backend) => (opened.push(backend), backend);
  return [
    {
      name: 'memory',
      pair() {
        const backend = track(memoryBackend());
        return { producer: backend, follower: backend };
      },
    },
    {
      name: 'redis (TCP)',
      pair() {
        const prefix = uniquePrefix(`${scope}-tcp`);
        prefixes.push(prefix);
        return { producer: track(redisBackend({ url: REDIS_URL, prefix })), follower: track(redisBackend({ url: REDIS_URL, prefix })) };
      },
    },
    {
      name: 'upstash (HTTP, through the bridge)',
      pair() {
        const prefix = bridge.prefix();
        const make = () => bridge.upstash({ prefix });
        return { producer: track(make()), follower: track(make()) };
      },
    },
    {
      // What Cloudflare Workers get: a Worker may not share I/O between requests, so each follower reads for itself.
      name: 'upstash, unshared readers (as on Workers)',
      pair() {
        const prefix = bridge.prefix();
        const make = () => bridge.upstash({ prefix, shareable: false });
        return { producer: track(make()), follower: track(make()) };
      },
    },
  ];
}
