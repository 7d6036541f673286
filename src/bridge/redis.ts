import { Redis, type RedisOptions } from 'ioredis';
import { BridgeError } from './errors.js';
import { redactUrl } from './options.js';

/**
 * Redis connections for the bridge. Nothing waits in an offline queue: a command sent while
 * Redis is away fails at once, and a request waits at most `timeoutMs` for a (re)connection,
 * so callers get a quick 502 instead of a hanging request.
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
  const client = new Redis(target.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: target.timeoutMs,
    commandTimeout: target.commandTimeoutMs,
    enableReadyCheck: false,
    protocol: 2, // the REST protocol mirrors RESP2 shapes: flat arrays, doubles as strings
    ...options,
  });
  client.on('error', () => {
    // Failures surface on the commands themselves; without a listener ioredis logs every retry.
  });
  return client;
}

/** Resolves once `client` can take commands, or throws a 502 within `target.timeoutMs`. */
export async function whenReady(client: Redis, target: RedisTarget): Promise<void> {
  if (client.status === 'wait') await client.connect().catch(() => undefined);
  if (isReady(client)) return;
  if (client.status === 'end') throw unreachable(target, 'connection closed');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => finish(unreachable(target, `no connection within ${target.timeoutMs} ms`)), target.timeoutMs);
    const onReady = () => finish();
    const onEnd = () => finish(unreachable(target, 'connection closed'));
    function finish(error?: Error) {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('end', onEnd);
      if (error) reject(error);
      else resolve();
    }
    client.once('ready', onReady);
    client.once('end', onEnd);
  });
}

function isReady(client: Redis): boolean {
  return client.status === 'ready';
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
