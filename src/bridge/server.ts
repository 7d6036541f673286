/**
 * edge-sse bridge: an HTTP server that speaks the Upstash Redis REST protocol in front of a
 * real Redis, so the real `@upstash/redis` client can be developed against, tested and
 * self-hosted without an Upstash account.
 *
 * Security: a bridge is a gateway to your Redis. Anyone holding the token can run every
 * allowed command on every key. Keep the token secret (it is a password, not an id), keep
 * the allowlist as tight as your app needs (`allowAll` is for development), bind to
 * 127.0.0.1 unless something else must reach it, and put TLS in front of it when it leaves
 * the machine. Redis connections: one for commands, pipelines and transactions, one for every
 * subscription; nothing a caller does opens another.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listen } from '../adapters/listen.js';
import { createTokenCheck } from './auth.js';
import { parseCommand, parseCommands, readBody } from './body.js';
import { createCommandPolicy, type CommandArg, type CommandPolicy } from './commands.js';
import { type CommandOutcome, outcomesToJson, outcomeToJson } from './encoding.js';
import { BridgeError } from './errors.js';
import { createExecutor, type Executor, type PipelineEntry } from './execute.js';
import { type ReplyFormat, replyFormatOf } from './format.js';
import { sendError, sendJsonText, sendResp2 } from './http.js';
import { type BridgeOptions, type BridgeSettings, resolveSettings } from './options.js';
import { connectShared, type RedisTarget } from './redis.js';
import { outcomeToResp2 } from './resp2.js';
import { ALLOWED_METHODS, decodeSegments, pathKindOf, routeOf, type Route } from './routes.js';
import { createStats, snapshot, type BridgeStats } from './stats.js';
import { openSubscription, type Subscription } from './subscribe.js';
import { SharedSubscriber } from './subscriber.js';

export type { BridgeOptions } from './options.js';

export interface Bridge {
  /** Base URL for `new Redis({ url, token })`, e.g. `http://127.0.0.1:8079`. */
  url: string;
  port: number;
  stats(): BridgeStats;
  close(): Promise<void>;
}

interface Context {
  checkToken: (authorization: string | undefined, queryToken: string | null) => boolean;
  policy: CommandPolicy;
  executor: Executor;
  subscriber: SharedSubscriber;
  settings: BridgeSettings;
  stats: BridgeStats;
  subscriptions: Set<Subscription>;
}

export async function createBridge(options: BridgeOptions): Promise<Bridge> {
  const checkToken = createTokenCheck(options.token);
  const settings = resolveSettings(options);
  const policy = createCommandPolicy({
    allow: options.allow,
    allowAll: options.allowAll,
    allowArbitraryScripts: options.allowArbitraryScripts,
    allowedScripts: options.allowedScripts,
  });
  const target: RedisTarget = { url: settings.redisUrl, timeoutMs: settings.redisTimeoutMs, commandTimeoutMs: settings.commandTimeoutMs };
  const shared = connectShared(target);
  const context: Context = {
    checkToken,
    policy,
    executor: createExecutor(shared, target, settings.maxTransactions),
    subscriber: new SharedSubscriber(target, settings.maxSubscriptions),
    settings,
    stats: createStats(),
    subscriptions: new Set(),
  };
  const server = createHttpServer(settings, (req, res) => void handleBridgeRequest(context, req, res));
  const { url, port } = await listen(server, settings.port, settings.host).catch((error: unknown) => {
    shared.disconnect();
    throw error;
  });
  return {
    url,
    port,
    stats: () => snapshot(context.stats),
    async close() {
      for (const subscription of context.subscriptions) subscription.close();
      context.subscriber.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      shared.disconnect();
      await closed;
    },
  };
}

/**
 * Explicit time bounds for slow clients rather than Node's defaults: the head, the whole request
 * (body included), and idle keep-alive connections. Node checks the first two every
 * `connectionsCheckingInterval`, so that interval follows them.
 */
function createHttpServer(settings: BridgeSettings, handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createServer(
    {
      headersTimeout: settings.headersTimeoutMs,
      requestTimeout: settings.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(settings.headersTimeoutMs / 4))),
    },
    handler,
  );
  server.keepAliveTimeout = settings.idleTimeoutMs;
  return server;
}

/** Answers one HTTP request; never throws. */
async function handleBridgeRequest(context: Context, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  const queryAt = url.indexOf('?');
  const [path, search] = queryAt === -1 ? [url, ''] : [url.slice(0, queryAt), url.slice(queryAt + 1)];
  const route = routeOf(path);
  const method = req.method ?? 'GET';
  const known = (ALLOWED_METHODS as readonly string[]).includes(method);
  context.stats.requests += 1;
  context.stats.byPath[known ? pathKindOf(route) : 'other'] += 1;
  try {
    if (!known) return refuseMethod(req, res, ALLOWED_METHODS);
    await dispatch(context, route, method, new URLSearchParams(search), req, res);
  } catch (error) {
    if (error instanceof BridgeError) sendError(res, error.status, error.message);
    else sendError(res, 500, `Internal bridge error: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function dispatch(
  context: Context,
  route: Route,
  method: string,
  query: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const takesBody = method === 'POST' || method === 'PUT';
  if ((route.kind === 'pipeline' || route.kind === 'multiExec') && !takesBody) return refuseMethod(req, res, ['POST', 'PUT']);
  if (route.kind === 'subscribe' && method === 'HEAD') return refuseMethod(req, res, ['GET', 'POST', 'PUT']);
  if (!context.checkToken(req.headers.authorization, query.get('_token'))) {
    req.resume();
    throw new BridgeError(401, 'Unauthorized: missing or invalid "Authorization: Bearer <token>" header (or ?_token=)');
  }
  const format = replyFormatOf(req.headers);
  const queryArgs = queryArguments(query);
  if (queryArgs.length > 0 && route.kind !== 'path') {
    req.resume();
    throw new BridgeError(400, 'Query parameters other than _token apply to path-style commands only, e.g. POST /set/key?EX=100');
  }
  if (route.kind === 'subscribe') return subscribe(context, route, req, res);
  if (!takesBody) req.resume();
  const body = takesBody ? await readBody(req, context.settings.maxBodyBytes) : Buffer.alloc(0);
  switch (route.kind) {
    case 'command':
      if (!takesBody)
        throw new BridgeError(
          400,
          'No command: POST a JSON array such as ["GET","key"] to /, or name the command in the path, e.g. GET /get/key',
        );
      return runCommand(context, parseCommand(body), format, res);
    case 'path':
      return runCommand(context, pathCommand(route.segments, body, queryArgs), format, res);
    case 'pipeline':
      return runPipeline(context, parseCommands(body), format, res);
    case 'multiExec':
      return runTransaction(context, parseCommands(body), format, res);
  }
}

function refuseMethod(req: IncomingMessage, res: ServerResponse, allowed: readonly string[]): void {
  req.resume();
  sendError(res, 405, `Method ${req.method} not allowed here; use ${allowed.join(', ')}`, { Allow: allowed.join(', ') });
}

/** `?EX=100&NX` → `EX 100 NX`, in order (Upstash appends query parameters to the command). */
function queryArguments(query: URLSearchParams): string[] {
  const args: string[] = [];
  for (const [name, value] of query) {
    if (name === '_token') continue;
    args.push(name);
    if (value !== '') args.push(value);
  }
  return args;
}

/** `/set/key/value`, or `/set/key` with the value as the body; query arguments come last. */
function pathCommand(segments: readonly string[], body: Buffer, queryArgs: string[]): CommandArg[] {
  const args: CommandArg[] = decodeSegments(segments);
  if (!args[0]) throw new BridgeError(400, 'No command in the path: expected /<command>/<arg>/…, e.g. /get/key');
  if (body.length > 0) args.push(body);
  return [...args, ...queryArgs];
}

async function runCommand(context: Context, command: CommandArg[], format: ReplyFormat, res: ServerResponse): Promise<void> {
  const refusal = context.policy.refusal(command);
  let outcome: CommandOutcome;
  if (refusal) outcome = { error: `ERR ${refusal}` };
  else {
    context.stats.commands += 1;
    outcome = await context.executor.command(command);
  }
  const status = 'error' in outcome ? 400 : 200;
  if (format.resp2) sendResp2(res, status, outcomeToResp2(command, outcome));
  else sendJsonText(res, status, outcomeToJson(outcome, format.base64));
}

/** As on Upstash, a refused command becomes its entry's error; the others run. */
async function runPipeline(context: Context, commands: CommandArg[][], format: ReplyFormat, res: ServerResponse): Promise<void> {
  const entries = commands.map((command): PipelineEntry => {
    const refusal = context.policy.refusal(command);
    return refusal ? { refusal } : { command };
  });
  context.stats.commands += entries.filter((entry) => 'command' in entry).length;
  const outcomes = await context.executor.pipeline(entries);
  if (format.resp2) sendResp2(res, 200, Buffer.concat(outcomes.map((outcome, index) => outcomeToResp2(commands[index]!, outcome))));
  else sendJsonText(res, 200, outcomesToJson(outcomes, format.base64));
}

/**
 * A transaction runs only if every command may run, so a refusal never leaves half of it applied
 * (Upstash, too, discards a transaction with an unsupported command). Always JSON, as on Upstash.
 */
async function runTransaction(context: Context, commands: CommandArg[][], format: ReplyFormat, res: ServerResponse): Promise<void> {
  commands.forEach((command, index) => {
    const refusal = context.policy.refusal(command);
    if (refusal) throw new BridgeError(400, `ERR command ${index + 1}: ${refusal}; nothing was executed`);
  });
  context.stats.commands += commands.length;
  sendJsonText(res, 200, outcomesToJson(await context.executor.multiExec(commands), format.base64));
}

async function subscribe(
  context: Context,
  route: Extract<Route, { kind: 'subscribe' }>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  req.resume();
  if (/[\r\n]/.test(route.name)) throw new BridgeError(400, 'Channel and pattern names must not contain line breaks');
  const { stats, subscriptions } = context;
  let subscription: Subscription | undefined;
  subscription = await openSubscription(route.mode, route.name, req, res, {
    subscriber: context.subscriber,
    heartbeatMs: context.settings.heartbeatMs,
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
  subscriptions.add(subscription);
}
