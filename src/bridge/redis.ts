import { Redis, type RedisOptions } from 'ioredis';
import { BridgeError } from './errors.js';

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

/** The shared connection for single commands and pipelines; reconnects by itself. */
export function connectShared(target: RedisTarget): Redis {
  return connect(target, { retryStrategy: (attempt) => Math.min(attempt * 100, 1000) });
}

/** A connection that is dropped, not revived, when its link breaks (transactions, subscribers). */
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

export function unreachable(target: RedisTarget, reason: string): BridgeError {
  return new BridgeError(502, `Redis is unreachable at ${redactUrl(target.url)}: ${reason}`);
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '(invalid Redis URL)';
  }
}

/**
 * Idle dedicated connections, reused so a transaction does not pay a TCP handshake. A
 * connection in doubt (its transaction failed for a reason other than a Redis reply) is
 * discarded rather than returned.
 */
export class ConnectionPool {
  private readonly idle: Redis[] = [];
  private readonly busy = new Set<Redis>();
  private closed = false;

  constructor(
    private readonly target: RedisTarget,
    private readonly maxIdle: number,
  ) {}

  async acquire(): Promise<Redis> {
    if (this.closed) throw new BridgeError(503, 'The bridge is closing');
    let client = this.idle.pop();
    while (client && client.status !== 'ready') {
      client.disconnect();
      client = this.idle.pop();
    }
    client ??= connectDedicated(this.target);
    this.busy.add(client);
    try {
      await whenReady(client, this.target);
    } catch (error) {
      this.release(client, false);
      throw error;
    }
    return client;
  }

  release(client: Redis, reusable: boolean): void {
    this.busy.delete(client);
    if (reusable && !this.closed && client.status === 'ready' && this.idle.length < this.maxIdle) this.idle.push(client);
    else client.disconnect();
  }

  close(): void {
    this.closed = true;
    for (const client of [...this.idle, ...this.busy]) client.disconnect();
    this.idle.length = 0;
    this.busy.clear();
  }
}
