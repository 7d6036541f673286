/** The bridge's options, and the defaults and checks that turn them into settings. */
import { redactUrl } from '../backends/redis/connect.js';

export interface BridgeOptions {
  /** Redis URL, `redis://…` or `rediss://…`. Default `redis://127.0.0.1:6379`. */
  redis?: string;
  /** The bearer token clients must present. Required. */
  token: string;
  /** Commands to allow on top of the default allowlist. */
  allow?: string[];
  /** Allow every command except those that cannot work over stateless HTTP; implies `allowArbitraryScripts`. */
  allowAll?: boolean;
  /**
   * Run any Lua script or function (EVAL, EVALSHA, SCRIPT, FUNCTION, FCALL and their _RO forms).
   * Default false: only the scripts edge-sse itself sends run. A script can read and write every
   * key and, looping, block Redis for every client; turn this on only for trusted callers.
   */
  allowArbitraryScripts?: boolean;
  /**
   * Further Lua scripts to run, by exact body, next to edge-sse's own (e.g. another library's
   * scripts). Each can touch any key: list only scripts you have read.
   */
  allowedScripts?: readonly string[];
  /** Port to listen on. Default 0 (a free port). */
  port?: number;
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Largest accepted request body. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Interval of `: ping` comments on subscriptions. Default 15 000 ms. */
  heartbeatMs?: number;
  /** How long a request waits for an unavailable Redis before a 502. Default 1 000 ms. */
  redisTimeoutMs?: number;
  /** How long one command may take before a 504. Default 10 000 ms. */
  commandTimeoutMs?: number;
  /** Subscription streams open at once; beyond, a 503. Default 1 000. */
  maxSubscriptions?: number;
  /** `/multi-exec` transactions running at once; beyond, a 503. Default 100. */
  maxTransactions?: number;
  /** Time a client has to send a request's headers (slowloris). Default 10 000 ms. */
  headersTimeoutMs?: number;
  /** Time a client has to send a whole request, body included. Default 30 000 ms. */
  requestTimeoutMs?: number;
  /** How long an idle keep-alive connection stays open between requests. Default 5 000 ms. */
  idleTimeoutMs?: number;
}

export interface BridgeSettings {
  redisUrl: string;
  host: string;
  port: number;
  maxBodyBytes: number;
  heartbeatMs: number;
  redisTimeoutMs: number;
  commandTimeoutMs: number;
  maxSubscriptions: number;
  maxTransactions: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
}

/** Fills in defaults; throws an Error that names the option to fix. */
export function resolveSettings(options: BridgeOptions): BridgeSettings {
  const settings: BridgeSettings = {
    redisUrl: validRedisUrl(options.redis ?? 'redis://127.0.0.1:6379'),
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    maxBodyBytes: positiveInteger('maxBodyBytes', options.maxBodyBytes, 1024 * 1024),
    heartbeatMs: positiveInteger('heartbeatMs', options.heartbeatMs, 15_000),
    redisTimeoutMs: positiveInteger('redisTimeoutMs', options.redisTimeoutMs, 1000),
    commandTimeoutMs: positiveInteger('commandTimeoutMs', options.commandTimeoutMs, 10_000),
    maxSubscriptions: positiveInteger('maxSubscriptions', options.maxSubscriptions, 1000),
    maxTransactions: positiveInteger('maxTransactions', options.maxTransactions, 100),
    headersTimeoutMs: positiveInteger('headersTimeoutMs', options.headersTimeoutMs, 10_000),
    requestTimeoutMs: positiveInteger('requestTimeoutMs', options.requestTimeoutMs, 30_000),
    idleTimeoutMs: positiveInteger('idleTimeoutMs', options.idleTimeoutMs, 5000),
  };
  if (settings.headersTimeoutMs > settings.requestTimeoutMs) {
    throw new Error(
      `headersTimeoutMs (${settings.headersTimeoutMs}) must not exceed requestTimeoutMs (${settings.requestTimeoutMs}): the headers are part of the request`,
    );
  }
  return settings;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, got ${String(value)}`);
  return value;
}

function validRedisUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`Invalid Redis URL "${url}": expected redis://host:port`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`Invalid Redis URL "${redactUrl(url)}": the scheme must be redis:// or rediss://`);
  }
  return url;
}
