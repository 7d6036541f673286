import { type Backend, memoryBackend } from '../src/index.ts';

export type Env = Record<string, string | undefined>;

/**
 * The first backend the environment configures, else the in-process memory backend.
 * Each Redis backend, once it exists, is one import and one line here, e.g.
 *   if (env.UPSTASH_REDIS_REST_URL && env.UPSTASH_REDIS_REST_TOKEN) return upstashBackend({ url: …, token: … });
 *   if (env.REDIS_URL) return redisBackend({ url: env.REDIS_URL });
 */
export function pickBackend(env: Env = process.env): Backend {
  return memoryBackend();
}
