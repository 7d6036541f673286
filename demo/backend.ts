import { randomBytes } from 'node:crypto';
import { redisBackend } from '../src/backends/redis/index.ts';
import { upstashBackend } from '../src/backends/upstash/index.ts';
import { type Bridge, createBridge } from '../src/bridge/index.ts';
import { type Backend, memoryBackend } from '../src/index.ts';

export type Env = Record<string, string | undefined>;

/** Upstash (or Vercel KV) when its REST variables are set, else TCP Redis for REDIS_URL, else memory. */
export function pickBackend(env: Env = process.env): Backend {
  const url = env.UPSTASH_REDIS_REST_URL ?? env.KV_REST_API_URL;
  const token = env.UPSTASH_REDIS_REST_TOKEN ?? env.KV_REST_API_TOKEN;
  if (url && token) return upstashBackend({ url, token });
  if (env.REDIS_URL) return redisBackend({ url: env.REDIS_URL });
  return memoryBackend();
}

/**
 * `npm run demo -- --bridge`: the whole edge path on one machine. A bridge speaks the Upstash
 * REST protocol in front of the local Redis, and the demo uses the Upstash backend through it.
 */
export async function bridgedBackend(env: Env = process.env): Promise<{ backend: Backend; bridge: Bridge; describe: string }> {
  const redis = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const token = randomBytes(16).toString('hex');
  const bridge = await createBridge({ token, redis });
  const backend = upstashBackend({ url: bridge.url, token, mode: env.EDGE_SSE_MODE === 'poll' ? 'poll' : 'subscribe' });
  return { backend, bridge, describe: `upstash via edge-sse-bridge at ${bridge.url} → ${redis}` };
}
