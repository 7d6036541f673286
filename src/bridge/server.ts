/**
 * edge-sse bridge: an HTTP server that speaks the Upstash Redis REST protocol in front of a
 * real Redis, so the real `@upstash/redis` client can be developed against, tested and
 * self-hosted without an Upstash account.
 *
 * Security: a bridge is a gateway to your Redis. Anyone holding the token can run every
 * allowed command on every key. Keep the token secret (it is a password, not an id), keep
 * the allowlist as tight as your app needs (`allowAll` is for development), bind to
 * 127.0.0.1 unless something else must reach it, and put TLS in front of it when it leaves
 * the machine.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTokenCheck } from './auth.js';
import { parseCommand, parseCommands, readBody } from './body.js';
import { createCommandPolicy, type CommandPolicy } from './commands.js';
import { BridgeError } from './errors.js';
import { createExecutor, type Executor } from './execute.js';
import { sendError, sendJson } from './http.js';
import { ConnectionPool, connectShared, redactUrl, type RedisTarget } from './redis.js';
import { routeOf, type Route } from './routes.js';
import { createStats, snapshot, type BridgeStats } from './stats.js';
import { openSubscription, type Subscription } from './subscribe.js';

export interface BridgeOptions {
  /** Redis URL, `redis://…` or `rediss://…`. Default `redis://127.0.0.1:6379`. */
  redis?: string;
  /** The bearer token clients must present. Required. */
  token: string;
  /** Commands to allow on top of the default allowlist. */
  allow?: string[];
  /** Allow every command except those that cannot work over stateless HTTP. */
  allowAll?: boolean;
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
}

export interface Bridge {
  /** Base URL for `new Redis({ url, token })`, e.g. `http://127.0.0.1:8079`. */
  url: string;
  port: number;
  stats(): BridgeStats;
  close(): Promise<void>;
}

interface Context {
  checkToken: (authorization: string | undefined) => boolean;
  policy: CommandPolicy;
  executor: Executor;
  target: RedisTarget;
  stats: BridgeStats;
  subscriptions: Set<Subscription>;
  maxBodyBytes: number;
  heartbeatMs: number;
}

export async function createBridge(options: BridgeOptions): Promise<Bridge> {
  const target: RedisTarget = {
    url: validRedisUrl(options.redis ?? 'redis://127.0.0.1:6379'),
    timeoutMs: options.redisTimeoutMs ?? 1000,
    commandTimeoutMs: options.commandTimeoutMs ?? 10_000,
  };
  const checkToken = createTokenCheck(options.token);
  const policy = createCommandPolicy({ allow: options.allow, allowAll: options.allowAll });
  const shared = connectShared(target);
  const transactions = new ConnectionPool(target, 8);
  const context: Context = {
    checkToken,
    policy,
    executor: createExecutor(shared, transactions, target),
    target,
    stats: createStats(),
    subscriptions: new Set(),
    maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
    heartbeatMs: options.heartbeatMs ?? 15_000,
  };
  const server = createServer((req, res) => void handleBridgeRequest(context, req, res));
  const host = options.host ?? '127.0.0.1';
  const port = await listen(server, options.port ?? 0, host).catch((error: unknown) => {
    shared.disconnect();
    throw error;
  });
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    stats: () => snapshot(context.stats),
    async close() {
      for (const subscription of context.subscriptions) subscription.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      transactions.close();
      shared.disconnect();
      await closed;
    },
  };
}

/** Answers one HTTP request; never throws. */
async function handleBridgeRequest(context: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const route = routeOf(req.url ?? '/');
  context.stats.requests += 1;
  context.stats.byPath[route.kind] += 1;
  try {
    await dispatch(context, route, req, res);
  } catch (error) {
    if (error instanceof BridgeError) sendError(res, error.status, error.message);
    else sendError(res, 500, `Internal bridge error: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function dispatch(context: Context, route: Route, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (route.kind === 'other') {
    req.resume();
    return sendError(res, 404, `Not found: ${req.method} ${req.url}. Endpoints: POST /, /pipeline, /multi-exec, /subscribe/<channel>, /psubscribe/<pattern>`);
  }
  if (req.method !== 'POST') {
    req.resume();
    return sendError(res, 405, `Method ${req.method} not allowed; use POST`, { Allow: 'POST' });
  }
  if (!context.checkToken(req.headers.authorization)) {
    req.resume();
    return sendError(res, 401, 'Unauthorized: missing or invalid "Authorization: Bearer <token>" header');
  }
  if (route.kind === 'subscribe') return subscribe(context, route, req, res);
  const body = await readBody(req, context.maxBodyBytes);
  const base64 = String(req.headers['upstash-encoding'] ?? '').toLowerCase() === 'base64';
  if (route.kind === 'command') return runCommand(context, parseCommand(body), base64, res);
  const commands = parseCommands(body);
  assertAllowed(context.policy, commands);
  context.stats.commands += commands.length;
  const run = route.kind === 'pipeline' ? context.executor.pipeline : context.executor.multiExec;
  sendJson(res, 200, await run(commands, base64));
}

async function runCommand(context: Context, command: string[], base64: boolean, res: ServerResponse): Promise<void> {
  const refusal = context.policy.refusal(command);
  if (refusal) throw new BridgeError(400, `ERR ${refusal}`);
  context.stats.commands += 1;
  const outcome = await context.executor.command(command, base64);
  sendJson(res, 'error' in outcome ? 400 : 200, outcome);
}

/** A batch runs only if every command may run, so a refusal never leaves half of it applied. */
function assertAllowed(policy: CommandPolicy, commands: string[][]): void {
  commands.forEach((command, index) => {
    const refusal = policy.refusal(command);
    if (refusal) throw new BridgeError(400, `ERR command ${index + 1}: ${refusal}; nothing was executed`);
  });
}

async function subscribe(context: Context, route: Extract<Route, { kind: 'subscribe' }>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  req.resume();
  if (/[\r\n]/.test(route.name)) throw new BridgeError(400, 'Channel names must not contain line breaks');
  const { stats, subscriptions } = context;
  let subscription: Subscription | undefined;
  subscription = await openSubscription(route.mode, route.name, req, res, {
    target: context.target,
    heartbeatMs: context.heartbeatMs,
    events: {
      onOpen: () => {
        stats.subscriptions += 1;
        stats.openSubscriptions += 1;
      },
      onMessage: () => {
        stats.pushedMessages += 1;
      },
      onClose: () => {
        stats.openSubscriptions -= 1;
        if (subscription) subscriptions.delete(subscription);
      },
    },
  });
  if (subscription) subscriptions.add(subscription);
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
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
