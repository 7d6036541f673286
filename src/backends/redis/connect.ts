/**
 * How edge-sse connects ioredis, for the TCP backend (one Redis or a Cluster) and the bridge alike:
 * - no offline queue and no retry of a command: a command sent while Redis is away fails at once
 *   instead of hanging a request, and a caller waits (briefly, `whenReady`) for the connection;
 * - RESP2, so replies keep Redis's own shapes (ioredis 6 speaks RESP3 by default and reshapes
 *   stream replies; the REST protocol the bridge serves mirrors RESP2);
 * - failures surface on the commands that hit them, not as logs;
 * - messages name a Redis by its URL without the password.
 */
import { Redis, type Cluster, type RedisOptions } from 'ioredis';

/** How long a command of the TCP backend waits for a connection. */
export const READY_TIMEOUT_MS = 2000;

/** RESP2 (the `protocol` option is ioredis 6's; ioredis 5 speaks RESP2 anyway). */
export const RESP2 = { protocol: 2 } as RedisOptions;

/** A connection to `url` that fails fast; `options` apply on top. */
export function connectRedis(url: string, options: RedisOptions = {}): Redis {
  return quiet(new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, ...RESP2, ...options }));
}

/** Without an 'error' listener ioredis logs every failed attempt; the commands report failures instead. */
export function quiet<T extends Redis | Cluster>(client: T): T {
  client.on('error', () => undefined);
  return client;
}

/**
 * Resolves once `client` takes commands (they are not queued while it is disconnected), connecting
 * a lazy one; rejects within `ms` with the reason it does not.
 */
export async function whenReady(client: Redis | Cluster, ms: number): Promise<void> {
  if (client.status === 'wait') void client.connect().catch(() => undefined);
  if (client.status === 'ready') return;
  if (isClosed(client)) throw new Error('the connection was closed');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no connection within ${ms} ms`)), ms);
    const onReady = () => done();
    const onEnd = () => done(new Error('the connection was closed'));
    function done(error?: Error) {
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

/** A connection that ended (it reconnects no more), or a Cluster that closed. */
function isClosed(client: Redis | Cluster): boolean {
  return client.status === 'end' || (client.isCluster && client.status === 'close');
}

/** The URL without its password, for messages (from text that is no URL, what stands between `//` and `@` is dropped). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}
