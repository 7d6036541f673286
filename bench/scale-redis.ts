/** Redis for the scale benchmark: unique key prefixes (deleted afterwards) and a bridge in front of the local Redis. */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { type Bridge, createBridge } from '../src/bridge/index.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const TOKEN = `scale-${randomBytes(12).toString('hex')}`;
/** Every key of this run starts with it; `cleanUp` deletes them all. */
const RUN_PREFIX = `esse-scale-${process.pid}-${randomBytes(3).toString('hex')}`;

export function prefixFor(name: string): string {
  return `${RUN_PREFIX}:${name}:`;
}

export function startBridge(): Promise<Bridge> {
  return createBridge({ token: TOKEN, redis: REDIS_URL });
}

/** Deletes every key this run created (SCAN by prefix, never FLUSHALL). */
export async function cleanUp(): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  redis.on('error', () => {});
  try {
    await redis.connect();
    for await (const keys of redis.scanStream({ match: `${RUN_PREFIX}:*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) await redis.unlink(...keys);
    }
  } finally {
    redis.disconnect();
  }
}
