import { formatCursor } from './cursor.js';
import { BackendError, EdgeSSEError, ValidationError } from './errors.js';
import { encodeText, formatComment, formatEvent, formatRetry } from './frames.js';
import type { HubListener, Hub } from './hub.js';
import { ZERO_ID, compareIds, maxId } from './ids.js';
import type { Backend, CallOptions, ChannelRead, StoredEvent } from './backends/types.js';
import type { DirectSink, SinkAttachment } from './direct.js';
import { Outlet } from './outlet.js';

/** Why a stream ended: the client left, its time or its access expired, the backend failed, it spent its
 * request budget, its client stopped reading, or the server refused it. */
export type CloseReason = 'client' | 'deadline' | 'expired' | 'backend' | 'budget' | 'slow-client' | 'server';

/** What every stream of one handler shares. */
export interface SessionSettings {
  backend: Backend;
  replay: number;
  retryMs: number;
  backendRetryMs: number;
  keepAliveMs: number;
  maxQueuedBytes: number;
  readBatch: number;
}

/** One stream's own. */
export interface StreamParams {
  hub: Hub;
  /** Sorted, unique. */
  channels: readonly string[];
  /** Positions from `Last-Event-ID`, aligned with `channels`; absent for a fresh connection. */
  resumeFrom: readonly string[] | undefined;
  /** Already jittered. */
  durationMs: number;
  /** When the client's access ends (epoch ms), if it does. */
  expiresAt: number | undefined;
  /** Called before each request this stream makes itself; throws once the budget is spent. */
  onRequest: (() => void) | undefined;
  onClose: (reason: CloseReason, error?: unknown) => void;
}

interface PendingBatch {
  channel: number;
  events: StoredEvent[];
}

/** Frames for one-channel connections are the same for every listener: encode them once. */
const sharedFrames = new WeakMap<StoredEvent, Uint8Array>();

/**
 * One client connection: a ReadableStream of SSE frames that catches up from a cursor, then goes
 * live, with heartbeats, a deadline, and a bounded queue. Closing it releases everything it holds.
 */
export class Session implements HubListener {
  private outlet: Outlet;
  private sent: string[] = [];
  /** Live events that arrive while catching up; `null` once live. */
  private pending: PendingBatch[] | null = [];
  private closed = false;
  private joined = false;
  private lastWrite = 0;
  /** One timer per connection, for both the next heartbeat and the end. */
  private timer: ReturnType<typeof setTimeout> | undefined;
  private endsAt = 0;
  private endReason: CloseReason = 'deadline';
  /** Events written to this stream (control events excluded). */
  delivered = 0;
  /** Made on the first backend call: most connections join a live channel and make none. */
  private aborter: AbortController | undefined;

  constructor(
    private readonly settings: SessionSettings,
    private readonly params: StreamParams,
  ) {
    this.outlet = new Outlet(() => this.close('client'));
  }

  /** The Response body. */
  get stream(): ReadableStream<Uint8Array> {
    return this.outlet.stream;
  }

  /** Sends the frames to a server adapter's sink instead of a body. */
  attach(sink: DirectSink): SinkAttachment {
    return this.outlet.attach(sink);
  }

  /**
   * Joins the live feed and sends what the client missed. Resolves once the first catch-up read is
   * queued (the rest streams with backpressure). Backend failures end the stream with a retry hint
   * instead of rejecting: EventSource reconnects after a stream ends, not after an error status.
   */
  async open(): Promise<void> {
    this.writeText(formatRetry(this.settings.retryMs, 'edge-sse'));
    this.startTimers();
    try {
      const livePositions = await this.params.hub.join(this.params.channels, this);
      this.joined = true;
      if (this.closed) return this.leaveHub();
      if (!this.params.resumeFrom) {
        await this.startFresh(livePositions);
        return this.goLive();
      }
      this.sent = [...this.params.resumeFrom];
      // A channel whose cursor is exactly where the live reader stands has nothing to catch up:
      // the common reconnect after maxDurationMs costs no request.
      const behind = this.params.channels
        .map((_, index) => index)
        .filter((index) => this.sent[index] !== livePositions[index]);
      if (behind.length === 0) return this.goLive();
      const reads = await this.readAfterCursor(behind);
      this.restartPastHead(behind, reads, livePositions);
      void this.catchUp(behind, reads);
    } catch (error) {
      if (!(error instanceof ValidationError)) return this.endWithRetry(error);
      this.close('server', error);
      throw error;
    }
  }

  onEvents(channel: string, events: StoredEvent[]): void {
    const index = this.params.channels.indexOf(channel);
    if (this.pending) this.pending.push({ channel: index, events });
    else this.sendNew(index, events);
  }

  onError(error: BackendError): void {
    this.endWithRetry(error);
  }

  close(reason: CloseReason, error?: unknown): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.aborter?.abort();
    this.leaveHub();
    if (reason === 'slow-client') this.outlet.abort('edge-sse: the client stopped reading');
    else this.outlet.close();
    this.params.onClose(reason, error);
  }

  private leaveHub(): void {
    if (this.joined) this.params.hub.leave(this.params.channels, this);
    this.joined = false;
  }

  /**
   * A fresh connection starts at the live position (or replays the newest events) and is told
   * its cursor by an `sse:ready` event, so even a reconnect before any event loses nothing.
   * (An id-only frame would do for browsers, but some parsers never surface one.)
   */
  private async startFresh(livePositions: string[]): Promise<void> {
    this.sent = [...livePositions];
    if (this.settings.replay > 0) await this.replayNewest(livePositions);
    this.sendControl('sse:ready', { channels: this.params.channels });
  }

  /** The newest events as of now, then live ones after them (which the hub has been buffering). */
  private async replayNewest(livePositions: string[]): Promise<void> {
    const tails = await this.settings.backend.tail(this.params.channels, this.settings.replay, this.callOptions());
    this.sent = livePositions.map(() => ZERO_ID);
    this.sendMerged(tails.map((tail) => tail.events));
    this.sent = this.sent.map((sent, index) => maxId(sent, livePositions[index] as string));
  }

  private readAfterCursor(indexes: number[]): Promise<ChannelRead[]> {
    const requests = indexes.map((index) => ({
      channel: this.params.channels[index] as string,
      after: this.sent[index] as string,
    }));
    return this.settings.backend.read(requests, this.settings.readBatch, this.callOptions());
  }

  /** Sends batch after batch until every channel is exhausted, waiting for the client to keep up. */
  private async catchUp(indexes: number[], reads: ChannelRead[]): Promise<void> {
    try {
      while (!this.closed) {
        reads.forEach((read, position) => {
          if (read.gap) this.sendGap(indexes[position] as number, read.gap.firstId);
        });
        this.sendMerged(
          reads.map((read) => read.events),
          indexes,
        );
        indexes = indexes.filter((_, position) => reads[position]!.events.length === this.settings.readBatch);
        if (indexes.length === 0) return this.goLive();
        await this.outlet.whenWritable(this.settings.maxQueuedBytes / 2);
        reads = await this.readAfterCursor(indexes);
      }
    } catch (error) {
      this.endWithRetry(error);
    }
  }

  /**
   * A position past a channel's head was issued by a stream that is gone (it expired, or the store
   * restarted empty): the backend reports a gap, and the channel goes on from the live position, so
   * that its new events, whose ids may be lower, are not taken for repeats.
   */
  private restartPastHead(indexes: number[], reads: ChannelRead[], livePositions: string[]): void {
    reads.forEach((read, position) => {
      const index = indexes[position] as number;
      if (compareIds(this.sent[index] as string, read.head) > 0) this.sent[index] = livePositions[index] as string;
    });
  }

  private goLive(): void {
    const pending = this.pending ?? [];
    this.pending = null;
    for (const batch of pending) this.sendNew(batch.channel, batch.events);
  }

  /** Sends several channels' events interleaved by id; ids within a channel are already ordered. */
  private sendMerged(perChannel: StoredEvent[][], indexes?: number[]): void {
    const batches = perChannel.map((events, position) => ({ channel: indexes?.[position] ?? position, events }));
    if (batches.length === 1) return this.sendNew(batches[0]!.channel, batches[0]!.events);
    const all = batches.flatMap(({ channel, events }) => events.map((event) => ({ channel, event })));
    all.sort((a, b) => compareIds(a.event.id, b.event.id));
    for (const { channel, event } of all) this.sendNew(channel, [event]);
  }

  /** Sends the events this connection has not sent yet (ids after its position), in order. */
  private sendNew(channel: number, events: StoredEvent[]): void {
    for (const event of events) {
      if (this.closed) return;
      if (compareIds(event.id, this.sent[channel] as string) <= 0) continue;
      this.sent[channel] = event.id;
      this.delivered++;
      this.write(this.frameFor(event));
    }
  }

  private frameFor(event: StoredEvent): Uint8Array {
    if (this.sent.length > 1) return this.encodeEvent(event);
    let frame = sharedFrames.get(event);
    if (!frame) sharedFrames.set(event, (frame = this.encodeEvent(event)));
    return frame;
  }

  private encodeEvent(event: StoredEvent): Uint8Array {
    return encodeText(formatEvent({ id: formatCursor(this.sent, event.json), event: event.type, data: event.data }));
  }

  private sendGap(channel: number, firstId: string | null): void {
    this.sendControl('sse:gap', { channel: this.params.channels[channel], firstId });
  }

  /** Control events carry the current cursor, so they never move a client's position backwards. */
  private sendControl(type: `sse:${string}`, data: object): void {
    this.writeText(formatEvent({ id: formatCursor(this.sent, true), event: type, data: JSON.stringify(data) }));
  }

  /** Timers this stream holds: for checking that none outlives it. */
  get timers(): number {
    return this.closed || this.timer === undefined ? 0 : 1;
  }

  private startTimers(): void {
    const { durationMs, expiresAt } = this.params;
    const untilExpiry = expiresAt === undefined ? Infinity : Math.max(0, expiresAt - Date.now());
    this.endReason = untilExpiry < durationMs ? 'expired' : 'deadline';
    this.endsAt = Date.now() + Math.min(durationMs, untilExpiry);
    this.schedule();
  }

  /** Re-armed lazily: a write only records its time, the timer looks at it when it fires. */
  private schedule(): void {
    const heartbeatAt = this.lastWrite + this.settings.keepAliveMs;
    this.timer = setTimeout(this.onTimer, Math.max(0, Math.min(heartbeatAt, this.endsAt) - Date.now()));
  }

  private onTimer = (): void => {
    if (this.closed) return;
    const now = Date.now();
    if (now >= this.endsAt) return this.close(this.endReason);
    if (now - this.lastWrite >= this.settings.keepAliveMs) this.writeText(formatComment());
    this.schedule();
  };

  private callOptions(): CallOptions {
    this.aborter ??= new AbortController();
    return { signal: this.aborter.signal, onRequest: this.params.onRequest };
  }

  /**
   * Ends the stream so the client resumes from its cursor: right away when the stream spent its
   * request budget, after a longer `retry:` when the backend failed.
   */
  private endWithRetry(error: unknown): void {
    if (this.closed) return;
    if (error instanceof EdgeSSEError && error.code === 'REQUEST_BUDGET') {
      this.writeText(formatComment('request budget spent'));
      return this.close('budget');
    }
    const jitter = Math.round(this.settings.backendRetryMs * Math.random() * 0.5);
    this.writeText(formatRetry(this.settings.backendRetryMs + jitter, 'backend unavailable'));
    const backendError =
      error instanceof EdgeSSEError ? error : new BackendError('BACKEND_ERROR', 'The backend failed', { cause: error });
    this.close('backend', backendError);
  }

  private writeText(text: string): void {
    this.write(encodeText(text));
  }

  private write(chunk: Uint8Array): void {
    if (this.closed || !this.outlet.write(chunk)) return;
    this.lastWrite = Date.now();
    // Catch-up waits for room between batches; only live events can outrun a stalled client.
    if (this.pending === null && this.outlet.queuedBytes > this.settings.maxQueuedBytes) this.close('slow-client');
  }
}
