import { upstashBackend } from 'edge-sse/upstash';

/**
 * Events live in Redis Streams behind Upstash's REST API. `upstashBackend()` reads
 * UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN (or Vercel's KV_REST_API_URL and
 * KV_REST_API_TOKEN) from the environment.
 */
export const backend = upstashBackend();
