/**
 * A `sendEvents` batch over several channels is all-or-nothing on one Redis: when any of its
 * channels cannot be stored (a key of another type, Redis out of memory), nothing is stored and
 * nobody is woken, so the caller can retry the whole batch without duplicating part of it.
 */
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Bridge, createBridge } from '../src/bridge/index.js';
import { redisBackend } from '../src/backends/redis/index.js';
import { upstashBackend } from '../src/backends/upstash/index.js';
import { type Backend, BackendError, type EventInput, sendEvents } from '../src/index.js';
import { deleteKeysWithPrefix, uniquePrefix } from './helpers/redis.js';
import { type OwnRedis, startOwnRedis } from './helpers/redis-server.js';

const TOKEN = 'atomic-token';

/** Every pub/sub message published under a prefix, in the order Redis published them. */
async function listenUnder(url: string, prefix: string) {
  const subscriber = new IORedis(url);
  const messages: { channel: string; message: string }[] = [];
  const waiters = new Set<() => void>();
  subscriber.on('pmessage', (_pattern: string, channel: string, message: string) => {
    messages.push({ channel, message });
    for (const waiter of waiters) waiter();
  });
  await subscriber.psubscribe(`${prefix}*`);
  return {
    messages,
    /** Resolves once a message on a channel ending with `suffix` has arrived. */
    until(suffix: string): Promise<void> {
      return new Promise((resolve) => {
        const check = () => {
          if (!messages.some((message) => message.channel.endsWith(suffix))) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      });
    },
    close: () => subscriber.disconnect(),
  };
}

const batch = (channels: string[], data = (n: number) => `event ${n}`): EventInput[] =>
  channels.map((channel, n) => ({ type: 'n', data: data(n), channel }));

async function failureOf(promise: Promise<unknown>): Promise<BackendError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(BackendError);
  return error as BackendError;
}

describe.each(['upstash (through the bridge)', 'redis (TCP)'] as const)('all-or-nothing batches: %s', (kind) => {
  let redis: OwnRedis;
  let direct: IORedis;
  let bridge: Bridge | undefined;
  const backends: Backend[] = [];

  function backendFor(prefix: string): Backend {
    const backend =
      kind === 'redis (TCP)' ? redisBackend({ url: redis.url, prefix }) : upstashBackend({ url: bridge!.url, token: TOKEN, prefix });
    backends.push(backend);
    return backend;
  }

  beforeAll(async () => {
    // Its own server: the out-of-memory test sets maxmemory.
    redis = await startOwnRedis();
    direct = new IORedis(redis.url);
    if (kind !== 'redis (TCP)') bridge = await createBridge({ token: TOKEN, redis: redis.url });
  });
  afterAll(async () => {
    for (const backend of backends) await backend.close();
    await bridge?.close();
    direct?.disconnect();
    await redis?.dispose();
  });

  it('a channel whose key is not a stream: rejects naming it, and the other channels store and wake nothing', async () => {
    const prefix = uniquePrefix('atomic');
    const backend = backendFor(prefix);
    await direct.set(`${prefix}{taken}`, 'a string someone else stored');
    const heard = await listenUnder(redis.url, prefix);
    try {
      const error = await failureOf(sendEvents(batch(['first', 'taken', 'first', 'second']), { backend }));
      expect(await direct.exists(`${prefix}{first}`, `${prefix}{second}`)).toBe(0);
      expect(error.message).toMatch(/channel "taken"/);
      expect(error.message).toMatch(/nothing was published/);
      expect(await direct.get(`${prefix}{taken}`)).toBe('a string someone else stored');

      // Redis publishes in order: once the next batch's wake-up is heard, an earlier one would have been.
      await sendEvents(batch(['marker']), { backend });
      await heard.until('marker');
      expect(heard.messages.map((message) => message.channel.slice(prefix.length))).toEqual([expect.stringMatching(/marker$/)]);
    } finally {
      heard.close();
      await deleteKeysWithPrefix(direct, prefix);
    }
  });

  it('out of memory: every batch is stored whole or refused whole, wherever the limit falls', async () => {
    const prefix = uniquePrefix('oom');
    const backend = backendFor(prefix);
    await sendEvents(batch(['warm']), { backend }); // the script is cached before memory runs out
    const heard = await listenUnder(redis.url, prefix);
    const big = (n: number) => `${n}:${'x'.repeat(60_000)}`;
    const outcomes: string[] = [];
    try {
      await direct.config('SET', 'maxmemory-policy', 'noeviction');
      // From less headroom than the batch's own arguments take to more than it stores.
      for (let headroom = 0; headroom <= 700_000; headroom += 50_000) {
        const [a, b] = [`a${headroom}`, `b${headroom}`];
        await direct.config('SET', 'maxmemory', '0');
        await direct.config('SET', 'maxmemory', String(usedMemory(await direct.info('memory')) + headroom));
        const outcome = await sendEvents(batch([a, a, a, a, b], big), { backend }).then(
          () => 'stored',
          (error: Error) => (error instanceof BackendError && /OOM/.test(error.message) ? 'refused' : error.message),
        );
        await direct.config('SET', 'maxmemory', '0');
        const stored = [await direct.xlen(`${prefix}{${a}}`), await direct.xlen(`${prefix}{${b}}`)];
        outcomes.push(`${outcome} ${stored.join('+')}`);
      }
      expect(
        outcomes.every((outcome) => outcome === 'stored 4+1' || outcome === 'refused 0+0'),
        outcomes.join(', '),
      ).toBe(true);
      expect(outcomes).toContain('refused 0+0');
      expect(outcomes).toContain('stored 4+1');

      // Nobody was woken for a refused batch.
      await sendEvents(batch(['marker']), { backend });
      await heard.until('marker');
      const woken = new Set(heard.messages.map((message) => message.channel.replace(/^.*?([ab]\d+|marker)$/, '$1')));
      const storedChannels = outcomes.flatMap((outcome, index) =>
        outcome.startsWith('stored') ? [`a${index * 50_000}`, `b${index * 50_000}`] : [],
      );
      expect([...woken].sort()).toEqual([...storedChannels, 'marker'].sort());
    } finally {
      await direct.config('SET', 'maxmemory', '0');
      heard.close();
      await deleteKeysWithPrefix(direct, prefix);
    }
  });
});

function usedMemory(info: string): number {
  const match = /^used_memory:(\d+)/m.exec(info);
  if (!match) throw new Error(`INFO memory has no used_memory: ${info}`);
  return Number(match[1]);
}
