import { formatCursor } from '../wire/cursor.js';
import { HistoryMerge, ReadSizer } from './catch-up.js';
import { BackendError, EdgeSSEError } from '../common/errors.js';
import { encodeText, formatComment, formatEvent, formatRetry } from '../wire/frames.js';
import type { HubListener, Hub } from './hub.js';
import { ZERO_ID, compareIds } from '../wire/ids.js';
import type { Backend, CallOptions, StoredEvent } from '../backends/contract.js';
import type { AttachedStream, SocketSink } from './socket-adapter.js';
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
  /** The web Request's signal, where there is one: it aborts when the client leaves. */
  signal: AbortSignal | undefined;
  onClose: (reason: CloseReason, error?: unknown) => void;
}

interface PendingBatch {
  channel: number;
  events: StoredEvent[];
  bytes: number;
}

/** Live events that arrive while catching up, and about how many bytes they hold. */
interface Pending {
  batches: PendingBatch[];
  bytes: number;
}

/**
 * A catch-up that cannot send waits for its client to take half its queue; a client that has not
 * within this many keepAliveMs (30 s by default) is not reading, and is closed as slow-client.
 * Two heartbeat periods let a slow but live link keep up (at the defaults, 512 KiB in 30 s:
 * ≥ 17 KB/s), and release a stalled one long before maxDurationMs.
 */
const STALL_KEEPALIVES = 2;

/** Frames for one-channel connections are the same for every listener: encode them once. */
const sharedFrames = new WeakMap<StoredEvent, Uint8Array>();

/**
 * One client's event stream: SSE frames, into a Response body or a socket adapter's sink (see
 * outlet.ts), that catch up from a cursor, then go live, with heartbeats, a deadline, and a
 * bounded queue. Closing it releases everything it holds.
 */
export class Session implements HubListener {
  private outlet: Outlet;
  private sent: string[] = [];
  /** Live events that arrive while catching up; `null` once live. */
  private pending: Pending | null = { batches: [], bytes: 0 };
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
  get body(): ReadableStream<Uint8Array> {
    return this.outlet.body;
  }

  /** Sends the frames to a server adapter's sink instead of a body; the adapter tells when the client leaves. */
  attach(sink: SocketSink): AttachedStream {
    return this.outlet.attach(sink);
  }

  /**
   * Joins the live feed, then sends what the client missed in the background, with backpressure.
   * Backend failures end the stream with a retry hint instead of rejecting: EventSource reconnects
   * after a stream ends, not after an error status.
   */
  async open(): Promise<void> {
    this.outlet.follow(this.params.signal);
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
      const behind = this.params.channels.map((_, index) => index).filter((index) => this.sent[index] !== livePositions[index]);
      if (behind.length === 0) return this.goLive();
      void this.catchUp(behind, livePositions);
    } catch (error) {
      this.endWithRetry(error);
    }
  }

  onEvents(channel: string, events: StoredEvent[]): void {
    const index = this.params.channels.indexOf(channel);
    if (!this.pending) {
      this.sendNew(index, events);
      return;
    }
    const bytes = bytesOf(events);
    this.pending.batches.push({ channel: index, events, bytes });
    this.pending.bytes += bytes;
    // Held for this client alone until its catch-up ends: the same bound as its queue.
    if (this.pending.bytes > this.settings.maxQueuedBytes) this.close('slow-client');
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

  /** The newest events as of joining, then the live ones after them (which the hub has been buffering). */
  private async replayNewest(livePositions: string[]): Promise<void> {
    const tails = await this.settings.backend.tail(this.params.channels, this.settings.replay, this.callOptions());
    this.sent = livePositions.map(() => ZERO_ID);
    // Newer ones arrive live: sent here, they could overtake older live events of other channels.
    this.sendMerged(tails.map(({ events }, index) => events.filter((event) => compareIds(event.id, livePositions[index] as string) <= 0)));
    this.sent = [...livePositions];
  }

  /**
   * Sends the history after the cursor up to the live positions, in id order across channels, then
   * the live events that arrived meanwhile, then goes live. Reads only when the queue has room, sized
   * to it: a client that does not read holds about maxQueuedBytes and one read, whatever the history.
   */
  private async catchUp(indexes: number[], livePositions: string[]): Promise<void> {
    const merge = new HistoryMerge(indexes, this.sent, livePositions);
    const sizer = new ReadSizer(this.settings.readBatch);
    const { maxQueuedBytes } = this.settings;
    try {
      while (!merge.done && !this.closed) {
        if (this.outlet.queuedBytes > maxQueuedBytes && !(await this.roomOrClose())) return;
        const next = merge.next();
        if (next) {
          sizer.record(this.sendNew(next.channel, [next.event]));
          continue;
        }
        if (this.outlet.queuedBytes > maxQueuedBytes / 2 && !(await this.roomOrClose())) return;
        await this.readHistory(merge, sizer, livePositions);
      }
      if (!this.closed && (await this.sendPending())) this.goLive();
    } catch (error) {
      this.endWithRetry(error);
    }
  }

  private async readHistory(merge: HistoryMerge, sizer: ReadSizer, livePositions: string[]): Promise<void> {
    const requests = merge.toRead();
    const limit = sizer.limit(this.settings.maxQueuedBytes - this.outlet.queuedBytes, requests.length);
    const reads = await this.settings.backend.read(
      requests.map(({ channel, after }) => ({ channel: this.params.channels[channel] as string, after })),
      limit,
      this.callOptions(),
    );
    if (this.closed) return;
    reads.forEach((read, position) => {
      const { channel, after } = requests[position]!;
      // A position past the head was issued by a stream that is gone (it expired, or the store
      // restarted empty): the channel goes on from the live position, so that its new events,
      // whose ids may be lower, are not taken for repeats.
      if (compareIds(after, read.head) > 0) this.sent[channel] = livePositions[channel] as string;
      if (read.gap) this.sendGap(channel, read.gap.firstId);
    });
    merge.take(reads, limit);
  }

  /** The live events that arrived while catching up, at the pace the client takes them; false if it closed. */
  private async sendPending(): Promise<boolean> {
    const pending = this.pending as Pending;
    while (pending.batches.length > 0) {
      if (this.outlet.queuedBytes > this.settings.maxQueuedBytes && !(await this.roomOrClose())) return false;
      const batch = pending.batches.shift() as PendingBatch;
      pending.bytes -= batch.bytes;
      this.sendNew(batch.channel, batch.events);
    }
    return !this.closed;
  }

  /**
   * Waits until the client has taken half its queue. False if the stream closed meanwhile, or if
   * the client did not take it within STALL_KEEPALIVES × keepAliveMs: then it is closed as slow-client.
   */
  private async roomOrClose(): Promise<boolean> {
    const lowWater = this.settings.maxQueuedBytes / 2;
    const closing = this.callOptions().signal as AbortSignal; // aborted by close()
    let stalled = false;
    let wake = (): void => {};
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stall = new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(() => {
        stalled = true;
        resolve();
      }, STALL_KEEPALIVES * this.settings.keepAliveMs);
    });
    closing.addEventListener('abort', wake);
    try {
      while (!this.closed && !stalled && this.outlet.queuedBytes > lowWater) {
        await Promise.race([this.outlet.whenWritable(lowWater), stall]);
      }
    } finally {
      clearTimeout(timer);
      closing.removeEventListener('abort', wake);
    }
    if (stalled) this.close('slow-client');
    return !this.closed;
  }

  private goLive(): void {
    const batches = this.pending?.batches ?? [];
    this.pending = null;
    for (const batch of batches) this.sendNew(batch.channel, batch.events);
  }

  /** Sends several channels' events interleaved by id; ids within a channel are already ordered. */
  private sendMerged(perChannel: StoredEvent[][]): void {
    if (perChannel.length === 1) {
      this.sendNew(0, perChannel[0] as StoredEvent[]);
      return;
    }
    const all = perChannel.flatMap((events, channel) => events.map((event) => ({ channel, event })));
    all.sort((a, b) => compareIds(a.event.id, b.event.id));
    for (const { channel, event } of all) this.sendNew(channel, [event]);
  }

  /** Sends the events this connection has not sent yet (ids after its position), in order; returns the bytes written. */
  private sendNew(channel: number, events: StoredEvent[]): number {
    let bytes = 0;
    for (const event of events) {
      if (this.closed) break;
      if (compareIds(event.id, this.sent[channel] as string) <= 0) continue;
      this.sent[channel] = event.id;
      this.delivered++;
      const frame = this.frameFor(event);
      bytes += frame.byteLength;
      this.write(frame);
    }
    return bytes;
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
    const backendError = error instanceof EdgeSSEError ? error : new BackendError('BACKEND_ERROR', 'The backend failed', { cause: error });
    this.close('backend', backendError);
  }

  private writeText(text: string): void {
    this.write(encodeText(text));
  }

  private write(chunk: Uint8Array): void {
    if (this.closed || !this.outlet.write(chunk)) return;
    this.lastWrite = Date.now();
    // Catch-up waits for room before it writes; only live events can outrun a stalled client.
    if (this.pending === null && this.outlet.queuedBytes > this.settings.maxQueuedBytes) this.close('slow-client');
  }
}

/** About what events hold in memory: their text (ids and types included). */
function bytesOf(events: readonly StoredEvent[]): number {
  let bytes = 0;
  for (const event of events) bytes += event.id.length + event.type.length + event.data.length;
  return bytes;
}
