import type { Redis, RedisOptions } from 'ioredis';
import { connectRedis, redactUrl, whenReady as connected } from '../backends/redis/connect.js';
import { BridgeError } from './errors.js';

/**
 * Redis connections for the bridge, made as the TCP backend makes its own (backends/redis/connect.ts):
 * a command sent while Redis is away fails at once, and a request waits at most `timeoutMs` for a
 * (re)connection, so callers get a quick 502 instead of a hanging request.
 */

export interface RedisTarget {
  url: string;
  timeoutMs: number;
  commandTimeoutMs: number;
}

/**
 * The shared connection for commands, pipelines and transactions; reconnects by itself. Integer
 * replies stay text (`stringNumbers`), so integers beyond 2^53 are not rounded on the way.
 */
export function connectShared(target: RedisTarget): Redis {
  return connect(target, { retryStrategy: (attempt) => Math.min(attempt * 100, 1000), stringNumbers: true });
}

/** A connection that is dropped, not revived, when its link breaks (the subscriber). */
export function connectDedicated(target: RedisTarget, extra: RedisOptions = {}): Redis {
  return connect(target, { retryStrategy: () => null, lazyConnect: true, ...extra });
}

function connect(target: RedisTarget, options: RedisOptions): Redis {
  return connectRedis(target.url, {
    connectTimeout: target.timeoutMs,
    commandTimeout: target.commandTimeoutMs,
    enableReadyCheck: false,
    ...options,
  });
}

/** Resolves once `client` can take commands, or throws a 502 within `target.timeoutMs`. */
export async function whenReady(client: Redis, target: RedisTarget): Promise<void> {
  try {
    await connected(client, target.timeoutMs);
  } catch (error) {
    throw unreachable(target, (error as Error).message);
  }
}

/** Maps a failure that is not a Redis reply error to the HTTP error the caller sees. */
export function transportError(error: unknown, target: RedisTarget): BridgeError {
  if (error instanceof BridgeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/timed out/i.test(message)) return new BridgeError(504, `Redis at ${redactUrl(target.url)} did not answer in time: ${message}`);
  return unreachable(target, message);
}

function unreachable(target: RedisTarget, reason: string): BridgeError {
  return new BridgeError(502, `Redis is unreachable at ${redactUrl(target.url)}: ${reason}`);
}
