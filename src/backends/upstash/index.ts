/**
 * edge-sse/upstash — events in Redis Streams over Upstash's REST protocol: the edge default.
 * Works with Upstash, Vercel KV/Marketplace Redis, and any Upstash-compatible endpoint such as
 * `edge-sse-bridge` in front of your own Redis.
 */
import { BackendError, invalidOption } from '../../common/errors.js';
import { resolveEnv } from '../../common/env.js';
import { wholeNumber } from '../../common/options.js';
import { BackoffWait } from '../redis-streams/backoff-wait.js';
import { XreadFeed } from '../redis-streams/xread-feed.js';
import { HeadFirst } from '../head-first.js';
import { streamsBackend } from '../redis-streams/backend.js';
import { DEFAULT_PREFIX, KeySpace } from '../redis-streams/keys.js';
import { SubscribeFeed } from './subscribe-feed.js';
import type { Backend } from '../contract.js';
import { UpstashRest } from './rest.js';
import { isCloudflareWorkers } from '../../common/runtime.js';

export interface UpstashBackendOptions {
  /** REST URL; defaults to UPSTASH_REDIS_REST_URL, then KV_REST_API_URL. */
  url?: string;
  /** REST token; defaults to UPSTASH_REDIS_REST_TOKEN, then KV_REST_API_TOKEN. */
  token?: string;
  /** An `@upstash/redis` client to take the URL and token from, instead of `url`/`token`. */
  redis?: unknown;
  /** Key prefix of every channel's stream (default `sse:`). */
  prefix?: string;
  /**
   * How live events are noticed. `subscribe` (default): one pub/sub stream per active channel
   * wakes a read — no request while idle. `poll`: one XREAD for all active channels, every
   * 100 ms after news, backing off to `pollIntervalMs` while idle.
   */
  mode?: 'subscribe' | 'poll';
  /** Longest poll interval while idle, in `poll` mode (default 2000). */
  pollIntervalMs?: number;
  /** Share readers between the connections of a process (default: yes, except on Cloudflare Workers). */
  shareable?: boolean;
  /**
   * Longest wait for one request, in ms (default 10000): for the whole answer of a command, and
   * for a subscription until it is confirmed (not its long-lived body). Past it the call fails with a
   * BackendError `BACKEND_TIMEOUT`.
   */
  timeoutMs?: number;
  /** Largest answer read from the endpoint, in bytes (default 64 MiB); a larger one is an error. */
  maxResponseBytes?: number;
  /** A custom fetch (tests, proxies, instrumentation). */
  fetch?: typeof fetch;
  /** Environment to read the variables from (default `process.env` where it exists). */
  env?: Record<string, string | undefined>;
}

const MIN_POLL_INTERVAL_MS = 100;
/**
 * A read is at most READ_BATCH (100) events per channel of at most maxEventBytes (64 KiB by
 * default) each, ~6.4 MiB per channel before JSON escaping: 64 MiB leaves room for several
 * channels and for escaping, yet keeps a hostile or broken endpoint from making the process
 * buffer without bound.
 */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** A day: any longer is no bound (and timers cannot wait past ~24.8 days). */
const MAX_TIMEOUT_MS = 86_400_000;

export function upstashBackend(options: UpstashBackendOptions = {}): Backend {
  const limits = {
    timeoutMs: wholeNumber('timeoutMs', options.timeoutMs, 10_000, 1, MAX_TIMEOUT_MS),
    maxResponseBytes: wholeNumber('maxResponseBytes', options.maxResponseBytes, MAX_RESPONSE_BYTES, 1024),
  };
  const rest = new UpstashRest(() => resolveCredentials(options), limits, options.fetch);
  const keys = new KeySpace(options.prefix ?? DEFAULT_PREFIX);
  const mode = options.mode ?? 'subscribe';
  if (mode !== 'subscribe' && mode !== 'poll') {
    throw invalidOption(`Option mode must be 'subscribe' or 'poll', got ${JSON.stringify(mode)}`);
  }
  const timing = {
    minIntervalMs: MIN_POLL_INTERVAL_MS,
    maxIntervalMs: wholeNumber('pollIntervalMs', options.pollIntervalMs, 2000, MIN_POLL_INTERVAL_MS),
  };
  return streamsBackend({
    name: 'upstash',
    transport: rest,
    keys,
    shareable: options.shareable ?? !isCloudflareWorkers(),
    createFeed: (listener, call, appId, tail) =>
      mode === 'poll'
        ? new XreadFeed(keys, new BackoffWait(rest, keys, timing, call), new HeadFirst(tail, listener, call), listener)
        : new SubscribeFeed(rest, keys, appId, listener, call),
    requests: () => rest.requests,
    subscriptions: () => rest.openSubscriptions,
    close: async () => undefined,
  });
}

/**
 * Missing credentials fail the first request, not the import, so building an app needs no secrets.
 * They are the server's configuration, not the caller's input: a BackendError, which the stream
 * handler answers with a 500 that says what to set.
 */
function resolveCredentials(options: UpstashBackendOptions): { url: string; token: string } {
  const fromClient = options.redis === undefined ? undefined : credentialsOf(options.redis);
  const env = resolveEnv(options.env);
  const url = options.url ?? fromClient?.url ?? env.UPSTASH_REDIS_REST_URL ?? env.KV_REST_API_URL;
  const token = options.token ?? fromClient?.token ?? env.UPSTASH_REDIS_REST_TOKEN ?? env.KV_REST_API_TOKEN;
  if (!url || !token) {
    const missing = [!url && 'URL', !token && 'token'].filter(Boolean).join(' and ');
    throw misconfigured(
      `upstashBackend has no REST ${missing}: set UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN ` +
        '(or KV_REST_API_URL and KV_REST_API_TOKEN) in the environment of the server, or pass { url, token } or { redis }',
    );
  }
  if (!/^https?:\/\//.test(url)) {
    // Only the scheme: the message reaches clients in the stream's 500, and a URL may hold a password.
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? url.slice(0, 8);
    throw misconfigured(`The Upstash REST URL must start with https:// (or http://); it starts with ${JSON.stringify(scheme)}`);
  }
  return { url, token };
}

function misconfigured(message: string): BackendError {
  return new BackendError('BACKEND_MISCONFIGURED', message);
}

/** Reads the URL and token an @upstash/redis client was made with (its HTTP client keeps both). */
function credentialsOf(redis: unknown): { url: string; token: string } {
  const client = (redis as { client?: { baseUrl?: unknown; headers?: Record<string, unknown> } }).client;
  const url = client?.baseUrl;
  const authorization = client?.headers?.authorization ?? client?.headers?.Authorization;
  if (typeof url !== 'string' || typeof authorization !== 'string' || !authorization.startsWith('Bearer ')) {
    throw misconfigured('Option redis must be an @upstash/redis Redis client (new Redis({ url, token }) or Redis.fromEnv())');
  }
  return { url, token: authorization.slice('Bearer '.length) };
}

export type { Backend } from '../contract.js';
