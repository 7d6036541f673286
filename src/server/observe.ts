import type { Backend } from '../backends/contract.js';
import type { Hub } from './hub.js';
import type { Incoming } from './socket-adapter.js';
import type { CloseReason, Session } from './session.js';

/** What a hook learns about a stream. */
export interface StreamInfo {
  /** Unique within the process. */
  id: number;
  channels: readonly string[];
  /** Whether it resumed from a `Last-Event-ID`. */
  resumed: boolean;
  /** Made on first read where the server adapter has none (edge-sse/node). */
  readonly request: Request;
  startedAt: number;
}

export interface StreamHooks {
  onConnect?(info: StreamInfo): void;
  onDisconnect?(info: StreamInfo, reason: CloseReason): void;
  /** Backend failures that ended streams, and errors thrown by hooks themselves. */
  onError?(error: unknown, info?: StreamInfo): void;
}

/** A snapshot of one handler's streams and the backend behind them. */
export interface StreamStats {
  openStreams: number;
  /** Channels being read live (one reader each, shared or per stream). */
  readers: number;
  /** Timers held by open streams (one each: its next heartbeat or its end). */
  timers: number;
  /** Pub/sub subscriptions or blocking connections the backend holds open. */
  subscriptions: number;
  /** Requests the backend has made since it was created. */
  backendRequests: number;
  /** Events written to streams since the handler was created. */
  eventsDelivered: number;
}

interface OpenStream {
  /** Only when there are hooks to give it to. */
  info: StreamInfo | undefined;
  /** Held while the stream is open (see openStream). */
  request: Request | undefined;
  session: Session;
  hub: Hub;
}

let nextStreamId = 1;

/** Holds what the request is made from rather than a Request: hooks rarely read it, every stream would pay for it. */
class Info implements StreamInfo {
  readonly id = nextStreamId++;
  readonly startedAt = Date.now();
  readonly #incoming: Incoming;

  constructor(
    readonly channels: readonly string[],
    readonly resumed: boolean,
    incoming: Incoming,
  ) {
    this.#incoming = incoming;
  }

  get request(): Request {
    return this.#incoming.toRequest();
  }
}

/** Tracks a handler's open streams for `stats()` and calls its hooks; a throwing hook never breaks a stream. */
export class StreamRegistry {
  private open = new Set<OpenStream>();
  private deliveredByClosed = 0;

  constructor(
    private backend: Backend,
    private hooks: StreamHooks,
    private sharedHub: Hub | undefined,
  ) {}

  info(incoming: Incoming, channels: readonly string[], resumed: boolean): StreamInfo | undefined {
    const { onConnect, onDisconnect, onError } = this.hooks;
    if (!onConnect && !onDisconnect && !onError) return undefined;
    return new Info(channels, resumed, incoming);
  }

  opened(stream: OpenStream): void {
    this.open.add(stream);
    const { info } = stream;
    if (info) this.call(() => this.hooks.onConnect?.(info), info);
  }

  closed(stream: OpenStream, reason: CloseReason, error?: unknown): void {
    if (!this.open.delete(stream)) return;
    this.deliveredByClosed += stream.session.delivered;
    const { info } = stream;
    if (!info) return;
    if (error !== undefined && reason === 'backend') this.call(() => this.hooks.onError?.(error, info), info);
    this.call(() => this.hooks.onDisconnect?.(info, reason), info);
  }

  stats(): StreamStats {
    let timers = 0;
    let delivered = this.deliveredByClosed;
    let readers = this.sharedHub?.stats().channels ?? 0;
    for (const { session, hub } of this.open) {
      timers += session.timers;
      delivered += session.delivered;
      if (hub !== this.sharedHub) readers += hub.stats().channels;
    }
    const backend = this.backend.stats();
    return {
      openStreams: this.open.size,
      readers,
      timers,
      subscriptions: backend.subscriptions ?? 0,
      backendRequests: backend.requests,
      eventsDelivered: delivered,
    };
  }

  private call(hook: () => void, info: StreamInfo): void {
    try {
      hook();
    } catch (error) {
      try {
        this.hooks.onError?.(error, info);
      } catch {
        // A failing onError has nowhere left to report to.
      }
    }
  }
}
