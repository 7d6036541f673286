/**
 * The Durable Object: one instance per channel set, holding the ONE upstream reader of its
 * channels and fanning it out to every listener. It runs edge-sse's own stream handler with
 * readers shared, which Durable Objects allow: all requests to one object share its I/O.
 */
import { DurableObject, type DurableObjectStateLike } from 'cloudflare:workers';
import type { Backend } from '../backends/contract.js';
import { channelsFromUrl } from '../server/channels.js';
import { ValidationError, invalidOption } from '../common/errors.js';
import { errorResponse } from '../common/responses.js';
import { type StreamHandler, type StreamHandlerOptions, createStreamHandler } from '../server/handler.js';
import type { StreamStats } from '../server/observe.js';
import { wholeNumber } from '../common/options.js';
import { Keeper } from './keeper.js';
import { relayBackend } from './relay-feed.js';
import { resilientBackend } from './resilient-feed.js';
import { EXPIRES_AT_HEADER, type StreamObjectNamespace, streamUrl, stubFor } from './routing.js';

export interface StreamObjectOptions
  extends Omit<StreamHandlerOptions, 'authorize' | 'cors' | 'maxChannels' | 'shareReaders' | 'maxRequests'> {
  /**
   * Made for this object alone (inside the function you give `createStreamObject`), and shareable:
   * `upstashBackend({ url, token, shareable: true })`.
   */
  backend: Backend;
  /**
   * This class's own binding (`env.SSE`). With it, an object for several channels follows each
   * through that channel's object, so every channel has one upstream reader however many channel
   * sets include it; without it, such an object reads its channels from Redis itself.
   */
  namespace?: StreamObjectNamespace;
  /** How long the object keeps its upstream reader after its last listener left (default 30 000). */
  lingerMs?: number;
  /**
   * How long the object keeps reconnecting a dropped upstream reader, its listeners waiting, before
   * their streams end with a retry hint (default 10 000).
   */
  readerRetryMs?: number;
}

export interface StreamObjectInstance {
  fetch(request: Request): Promise<Response>;
  alarm(): Promise<void>;
  /** This object's streams, readers and backend requests (the handler's `stats()`); callable through the stub. */
  stats(): StreamStats;
}

export interface StreamObjectClass<Env> {
  new (ctx: never, env: Env): StreamObjectInstance;
}

const HOUR_MS = 3_600_000;
/** Any channel set the Worker admitted (the Worker enforces its own maxChannels). */
const ANY_CHANNEL_COUNT = 1000;

/** Every backend serves one object: objects of one isolate must not share I/O. */
const claimedBackends = new WeakSet<Backend>();

/** What an object serves, made on its first request (when it learns its channels). */
interface Served {
  handler: StreamHandler;
  keeper: Keeper;
  lingerMs: number;
}

/**
 * The Durable Object class to export from your Worker and bind in wrangler.toml. `configure` is
 * called once per object with the Worker's env.
 */
export function createStreamObject<Env>(configure: (env: Env) => StreamObjectOptions): StreamObjectClass<Env> {
  if (typeof configure !== 'function') {
    throw invalidOption('createStreamObject needs a function (env) => ({ backend: upstashBackend({ …, shareable: true }) })');
  }
  class StreamObject extends DurableObject<Env> implements StreamObjectInstance {
    #served: Served | undefined;

    constructor(ctx: DurableObjectStateLike, env: Env) {
      super(ctx, env);
    }

    async fetch(request: Request): Promise<Response> {
      if (!this.#served) {
        const served = this.#serve(request);
        if (served instanceof Response) return served;
        this.#served = served;
      }
      const served = this.#served;
      await served.keeper.hold();
      return served.handler(request);
    }

    /** The linger is over: if no listener came back, let the upstream reader go. */
    async alarm(): Promise<void> {
      const served = this.#served;
      if (served && served.handler.stats().openStreams === 0) served.keeper.release();
    }

    stats(): StreamStats {
      return this.#served?.handler.stats() ?? emptyStats();
    }

    #serve(request: Request): Served | Response {
      let channels: string[];
      try {
        channels = channelsFromUrl(new URL(request.url), ANY_CHANNEL_COUNT);
      } catch (error) {
        // Only a caller other than the Worker's handler (which admitted the channels) gets here.
        if (error instanceof ValidationError) return errorResponse(400, error.message);
        throw error;
      }
      const options = configure(this.env);
      const backend = objectBackend(options, channels);
      const lingerMs = wholeNumber('lingerMs', options.lingerMs, 30_000, 0);
      const { namespace: _namespace, lingerMs: _linger, readerRetryMs: _retry, onDisconnect, ...handlerOptions } = options;
      const handler = createStreamHandler({
        ...handlerOptions,
        backend,
        shareReaders: true,
        maxChannels: ANY_CHANNEL_COUNT,
        authorize: expiryFromWorker,
        onDisconnect: (info, reason) => {
          this.#listenerLeft();
          onDisconnect?.(info, reason);
        },
      });
      const keeper = new Keeper(
        createStreamHandler({ backend, shareReaders: true, maxChannels: ANY_CHANNEL_COUNT, maxDurationMs: HOUR_MS, keepAliveMs: HOUR_MS }),
        streamUrl('https://edge-sse.keeper/', channels),
        () => handler.stats().openStreams > 0,
      );
      return { handler, keeper, lingerMs };
    }

    #listenerLeft(): void {
      const served = this.#served;
      if (!served || served.handler.stats().openStreams > 0) return;
      if (served.lingerMs === 0) return served.keeper.release();
      // Unconfirmed: the object's other streams need not wait for this write. Were it lost, the
      // reader would go when the runtime evicts the idle object.
      this.ctx.storage.setAlarm(Date.now() + served.lingerMs, { allowUnconfirmed: true }).catch(() => served.keeper.release());
    }
  }
  return StreamObject as unknown as StreamObjectClass<Env>;
}

function objectBackend(options: StreamObjectOptions, channels: string[]): Backend {
  const { backend, namespace } = options;
  if (!backend || typeof backend.createFeed !== 'function') {
    throw invalidOption('createStreamObject: the function must return { backend }, e.g. upstashBackend({ url, token, shareable: true })');
  }
  if (!backend.shareable) {
    throw invalidOption(
      "createStreamObject: the backend must be shareable, so the object's listeners share one reader: " +
        'upstashBackend({ url, token, shareable: true })',
    );
  }
  if (claimedBackends.has(backend)) {
    throw invalidOption(
      'createStreamObject: this backend already serves another object. Objects must not share I/O: ' +
        'create the backend inside the function you pass to createStreamObject, not outside it',
    );
  }
  claimedBackends.add(backend);
  const giveUpMs = wholeNumber('readerRetryMs', options.readerRetryMs, 10_000, 0);
  if (channels.length > 1 && namespace) {
    const open = (channel: string, lastEventId: string | undefined, signal: AbortSignal) =>
      stubFor(namespace, [channel]).fetch(
        new Request(streamUrl('https://edge-sse.relay/', [channel]), {
          headers: lastEventId ? { 'Last-Event-ID': lastEventId } : {},
          signal,
        }),
      );
    return relayBackend(backend, open, { giveUpMs });
  }
  return resilientBackend(backend, { giveUpMs });
}

/** The Worker ran `authorize`; the object ends the stream when the access it granted ends. */
function expiryFromWorker(request: Request): true | { expiresAt: number } {
  const header = request.headers.get(EXPIRES_AT_HEADER);
  return header === null ? true : { expiresAt: Number(header) };
}

function emptyStats(): StreamStats {
  return { openStreams: 0, readers: 0, timers: 0, subscriptions: 0, backendRequests: 0, eventsDelivered: 0 };
}
