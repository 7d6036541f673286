/**
 * The Worker the Durable Object tests run in workerd: edge-sse/cloudflare from src/, bundled by
 * esbuild. Two object classes with different settings, a per-connection handler beside them for
 * comparison, and a class whose configuration is broken.
 *
 *   /stream, /secure/stream (channel tokens), /short/stream (short deadlines), /linger/stream,
 *   /tight/stream (small queues),
 *   /broken/stream, /shared/stream (misconfigured), /plain/stream (createStreamHandler per connection), /stats
 */
import { upstashBackend } from '../../src/backends/upstash/index.ts';
import { createDurableStreamHandler, createStreamObject, type StreamObjectNamespace } from '../../src/cloudflare/index.ts';
import { channelTokenAuthorizer, createStreamHandler } from '../../src/index.ts';

interface Env {
  BRIDGE_URL: string;
  BRIDGE_TOKEN: string;
  PREFIX: string;
  TOKEN_SECRET: string;
  SSE: StreamObjectNamespace;
  SHORT: StreamObjectNamespace;
  LINGER: StreamObjectNamespace;
  TIGHT: StreamObjectNamespace;
  BROKEN: StreamObjectNamespace;
  SHARED: StreamObjectNamespace;
}

const backendFor = (env: Env) => upstashBackend({ url: env.BRIDGE_URL, token: env.BRIDGE_TOKEN, prefix: env.PREFIX, shareable: true });
/** With the object's clock: a test compares it with when the reader went. */
const logClose = (info: { channels: readonly string[] }, reason: string) =>
  console.log(`object closed ${info.channels.join(',')} ${reason} at ${Date.now()}`);

const Base = createStreamObject<Env>((env) => ({
  backend: backendFor(env),
  namespace: env.SSE,
  lingerMs: 800,
  readerRetryMs: 1500,
  backendRetryMs: 400,
  onDisconnect: logClose,
}));

/** Says when a request reaches an object: refused requests must not. */
export class StreamObject extends Base {
  override fetch(request: Request): Promise<Response> {
    console.log(`object reached ${new URL(request.url).search}`);
    return super.fetch(request);
  }
}

/** A linger long enough that a slow machine cannot make a test miss it. */
export const LingerObject = createStreamObject<Env>((env) => ({
  backend: backendFor(env),
  lingerMs: 3000,
  onDisconnect: logClose,
}));

export const ShortObject = createStreamObject<Env>((env) => ({
  backend: backendFor(env),
  namespace: env.SHORT,
  maxDurationMs: 1500,
  keepAliveMs: 300,
  retryMs: 50,
  lingerMs: 0,
  onDisconnect: logClose,
}));

/** A small queue per listener, to catch one that stops reading. */
export const TightObject = createStreamObject<Env>((env) => ({
  backend: backendFor(env),
  maxQueuedBytes: 64 * 1024,
  lingerMs: 0,
  onDisconnect: logClose,
}));

/** Not shareable: the object must refuse it, saying how to fix it. */
export const BrokenObject = createStreamObject<Env>((env) => ({
  backend: upstashBackend({ url: env.BRIDGE_URL, token: env.BRIDGE_TOKEN, prefix: env.PREFIX }),
}));

/** One backend for every object of the class: the second object must refuse it. */
let sharedBackend: ReturnType<typeof upstashBackend> | undefined;
export const SharedObject = createStreamObject<Env>((env) => ({ backend: (sharedBackend ??= backendFor(env)) }));

let handlers:
  | {
      env: Env;
      routes: Record<string, (request: Request) => Promise<Response>>;
      stats: ReturnType<typeof createDurableStreamHandler>['stats'];
    }
  | undefined;

function routesFor(env: Env) {
  if (handlers?.env === env) return handlers;
  const onError = (error: unknown) => console.log(`worker onError: ${(error as Error).message}`);
  const main = createDurableStreamHandler({ namespace: env.SSE, cors: { origin: ['https://app.example'] }, onError });
  const routes = {
    '/stream': main,
    '/secure/stream': createDurableStreamHandler({ namespace: env.SSE, authorize: channelTokenAuthorizer(env.TOKEN_SECRET) }),
    '/short/stream': createDurableStreamHandler({ namespace: env.SHORT }),
    '/linger/stream': createDurableStreamHandler({ namespace: env.LINGER }),
    '/tight/stream': createDurableStreamHandler({ namespace: env.TIGHT }),
    '/broken/stream': createDurableStreamHandler({ namespace: env.BROKEN, backendRetryMs: 100, onError }),
    '/shared/stream': createDurableStreamHandler({ namespace: env.SHARED, backendRetryMs: 100, onError }),
    // Today's path: each stream reads for itself (Workers forbid sharing I/O between requests).
    '/plain/stream': createStreamHandler({ backend: upstashBackend({ url: env.BRIDGE_URL, token: env.BRIDGE_TOKEN, prefix: env.PREFIX }) }),
  };
  handlers = { env, routes, stats: main.stats };
  return handlers;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const { routes, stats } = routesFor(env);
    if (url.pathname === '/stats') return Response.json(await stats(url.searchParams.getAll('channel')));
    const route = routes[url.pathname as keyof typeof routes];
    return route ? route(request) : new Response('not found', { status: 404 });
  },
};
