/**
 * How an object serving several channels follows them live: through each channel's own object
 * (one stream per channel, read like an EventSource would), so every channel keeps ONE upstream
 * reader however many channel sets include it. Catching up after a cursor still reads Redis
 * directly (the wrapped backend's `read`); only the live feed is relayed.
 */
import { BackendError } from '../common/errors.js';
import { compareIds, isStreamId } from '../wire/ids.js';
import { JSON_MARKER } from '../wire/cursor.js';
import type { Backend, FeedListener, LiveFeed, StoredEvent } from '../backends/contract.js';
import { type ParsedMessage, SSEParser } from './sse-parser.js';

/** Opens the stream of one channel's object, resuming after `lastEventId` when given. */
export type OpenChannel = (channel: string, lastEventId: string | undefined, signal: AbortSignal) => Promise<Response>;

export interface RelayTiming {
  /** How long the relay keeps reconnecting a failing channel before its listeners are told. */
  giveUpMs: number;
}

/** A stream that stayed open this long, or delivered anything, was healthy: its end is a normal one. */
const HEALTHY_MS = 1000;

/** `base` with a live feed that relays the channels' objects; reads and writes still go to `base`. */
export function relayBackend(base: Backend, open: OpenChannel, timing: RelayTiming): Backend {
  return Object.create(base, {
    shareable: { value: true },
    createFeed: { value: (listener: FeedListener) => new RelayFeed(open, listener, timing) },
  }) as Backend;
}

export class RelayFeed implements LiveFeed {
  private relays = new Map<string, Relay>();

  constructor(
    private open: OpenChannel,
    private listener: FeedListener,
    private timing: RelayTiming,
  ) {}

  /** From `'head'`: the channel object's `sse:ready` carries its head, and events after it follow. */
  follow(channel: string, from: string | 'head'): void {
    this.relays.get(channel)?.stop();
    const after = from === 'head' ? undefined : from;
    if (after !== undefined) this.listener.onFollowing(channel, after);
    const relay = new Relay(channel, after, this.open, this.timing, {
      onHead: (head) => this.listener.onFollowing(channel, head),
      onEvents: (events) => this.listener.onEvents(channel, events),
      onError: (error) => {
        if (this.relays.get(channel) === relay) this.relays.delete(channel);
        this.listener.onError(channel, error);
      },
    });
    this.relays.set(channel, relay);
    void relay.run();
  }

  unfollow(channel: string): void {
    this.relays.get(channel)?.stop();
    this.relays.delete(channel);
  }

  close(): void {
    for (const relay of this.relays.values()) relay.stop();
    this.relays.clear();
  }
}

interface RelayReport {
  /** The head from the first stream's `sse:ready`, for a relay that started there. */
  onHead(head: string): void;
  onEvents(events: StoredEvent[]): void;
  onError(error: BackendError): void;
}

class Relay {
  private aborter = new AbortController();
  private retryMs = 1000;
  private failingSince: number | undefined;

  /** `position` undefined: the head comes with the first stream's `sse:ready`. */
  constructor(
    private channel: string,
    private position: string | undefined,
    private open: OpenChannel,
    private timing: RelayTiming,
    private report: RelayReport,
  ) {}

  stop(): void {
    this.aborter.abort();
  }

  /** Reads the channel's stream, reconnecting from the position when it ends, as EventSource would. */
  async run(): Promise<void> {
    while (!this.aborter.signal.aborted) {
      const started = Date.now();
      let healthy = false;
      let failure: unknown;
      try {
        healthy = await this.listen();
      } catch (error) {
        failure = error;
      }
      if (this.aborter.signal.aborted) return;
      // A refusal (4xx) or a gap: reconnecting would meet the same.
      if (failure instanceof BackendError && failure.code === 'BACKEND_ERROR') return this.fail(failure);
      if (this.position === undefined) {
        return this.fail(failure ?? new BackendError('BACKEND_UNAVAILABLE', `The stream of ${this.channel} ended before it was ready`));
      }
      if (healthy) {
        this.failingSince = undefined;
        continue;
      }
      this.failingSince ??= started;
      if (Date.now() - this.failingSince > this.timing.giveUpMs) {
        return this.fail(failure ?? new BackendError('BACKEND_UNAVAILABLE', `The stream of ${this.channel} keeps ending`));
      }
      await this.pause(this.retryMs);
    }
  }

  /** One stream, to its end; true if it was healthy (see HEALTHY_MS). */
  private async listen(): Promise<boolean> {
    const response = await this.open(this.channel, this.position, this.aborter.signal);
    if (!response.ok || !response.body) {
      const reason = await response.text().catch(() => '');
      throw new BackendError(
        response.status < 500 ? 'BACKEND_ERROR' : 'BACKEND_UNAVAILABLE',
        `The object of ${this.channel} answered ${response.status}: ${reason.slice(0, 200)}`,
      );
    }
    const opened = Date.now();
    let delivered = false;
    const batch: StoredEvent[] = [];
    const parser = new SSEParser({
      onRetry: (milliseconds) => (this.retryMs = milliseconds),
      onMessage: (message) => {
        if (this.take(message, batch)) delivered = true;
      },
    });
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.aborter.signal.aborted) break;
        parser.push(value);
        if (batch.length > 0) this.report.onEvents(batch.splice(0));
      }
    } finally {
      reader.cancel().catch(() => undefined);
    }
    return delivered || Date.now() - opened >= HEALTHY_MS;
  }

  /** Handles one message; true if it moved the relay forward. */
  private take(message: ParsedMessage, batch: StoredEvent[]): boolean {
    const cursor = message.id ?? '';
    const json = cursor.endsWith(JSON_MARKER);
    const id = json ? cursor.slice(0, -JSON_MARKER.length) : cursor;
    if (!isStreamId(id)) return false; // not a one-channel cursor: not from a channel's object
    if (message.event === 'sse:ready') {
      if (this.position !== undefined) return false;
      this.position = id;
      this.report.onHead(id);
      return true;
    }
    if (message.event === 'sse:gap') {
      // Events after the relay's position were trimmed: its listeners resume from their own
      // cursors, reading Redis directly, and are told of the gap there.
      throw new BackendError('BACKEND_ERROR', `Events of ${this.channel} were trimmed while relaying it`);
    }
    if (message.event.startsWith('sse:') || this.position === undefined) return false; // replayed before ready
    if (compareIds(id, this.position) <= 0) return false;
    this.position = id;
    batch.push({ id, type: message.event, data: message.data, json });
    return true;
  }

  private pause(milliseconds: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, milliseconds);
      this.aborter.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
  }

  private fail(error: unknown): void {
    if (this.aborter.signal.aborted) return;
    this.aborter.abort();
    this.report.onError(
      error instanceof BackendError ? error : new BackendError('BACKEND_UNAVAILABLE', `Relaying ${this.channel} failed`, { cause: error }),
    );
  }
}
