/**
 * The XREAD feed with its poll wait (upstash `poll` mode), against a transport the test answers:
 * what it asks, and when.
 */
import { describe, expect, it } from 'vitest';
import { HeadFirst } from '../src/backends/head-first.js';
import { BackoffWait } from '../src/backends/redis-streams/backoff-wait.js';
import { KeySpace } from '../src/backends/redis-streams/keys.js';
import type { RedisCommand, RedisReply, RedisTransport } from '../src/backends/redis-streams/transport.js';
import { XreadFeed } from '../src/backends/redis-streams/xread-feed.js';
import type { FeedListener } from '../src/backends/contract.js';
import { waitUntil } from './helpers/wait.js';

/** Answers nothing until aborted; the abort settles the request a moment later, as fetch does. */
class StallingTransport implements RedisTransport {
  readonly asked: RedisCommand[] = [];

  pipeline(commands: RedisCommand[], options: { signal?: AbortSignal } = {}): Promise<(RedisReply | Error)[]> {
    this.asked.push(...commands);
    return new Promise((_, reject) => {
      options.signal?.addEventListener('abort', () => setTimeout(() => reject(new Error('aborted')), 20), { once: true });
    });
  }
}

const listener: FeedListener = { onFollowing() {}, onEvents() {}, onError() {} };

describe('XreadFeed polling', () => {
  it('a channel followed while the poll of the last one left is being called off is polled at once', async () => {
    const keys = new KeySpace('sse:');
    const transport = new StallingTransport();
    const wait = new BackoffWait(transport, keys, { minIntervalMs: 100, maxIntervalMs: 60_000 });
    const feed = new XreadFeed(keys, wait, new HeadFirst(async () => [], listener, {}), listener);
    try {
      feed.follow('a', '1-0');
      await waitUntil(() => transport.asked.length === 1);
      feed.unfollow('a'); // aborts the poll, which settles 20 ms later
      feed.follow('b', '2-0');
      await waitUntil(() => transport.asked.length === 2, 1000);
      expect(transport.asked[1]).toEqual(['XREAD', 'COUNT', 100, 'STREAMS', 'sse:{b}', '2-0']);
    } finally {
      feed.close();
    }
  });
});
