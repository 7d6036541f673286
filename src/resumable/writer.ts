/**
 * Writes one stream's text to its channel in batches: one append in flight at a time; text that
 * comes meanwhile waits for the next. A batch goes when its first character has waited
 * `flushMs` (while someone follows) or `idleFlushMs` (while nobody does), when it reaches
 * `maxBatchChars`, or when the stream ends — the end rides in the last batch.
 *
 * How it learns that someone follows, at no cost: every append reports the channel's newest id
 * before it (`onPrevious`). The writer knows its own last id; a different one means another
 * writer appended in between, and the only other writer of a running stream is its first
 * follower's `rs.follow` mark. A backend that does not report it is taken as followed.
 *
 * While its source is silent it appends a heartbeat every third of `timeoutMs`, so followers can
 * tell a quiet producer from a dead one.
 */
import type { Backend, NewEvent, Retention } from '../backends/contract.js';
import { endEvents, plainEvent, textEvent, TICK } from './events.js';
import type { StreamChannels } from './names.js';

export interface WriterSettings {
  backend: Backend;
  retention: Retention;
  flushMs: number;
  idleFlushMs: number;
  maxBatchChars: number;
  /** A follower marks the stream failed after this long without an event. */
  timeoutMs: number;
  /** Text waiting for the store, at most; past it the writer gives up (its followers see the stream fail). */
  maxPendingChars: number;
  /** Bound on one request to the store. */
  callTimeoutMs: number;
  onError?: (error: unknown, streamId: string) => void;
}

const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2000;

export class StreamWriter {
  private pending = '';
  private pendingSince = 0;
  private numbered = 0;
  private followed: boolean;
  private sending = false;
  private ending: { reason: string | undefined } | undefined;
  private gaveUp = false;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private flushDue = Infinity;
  private tickTimer: ReturnType<typeof setTimeout> | undefined;
  private resolveFinished!: () => void;
  /** Settles once the end is stored, or the writer gave up. */
  readonly finished = new Promise<void>((resolve) => (this.resolveFinished = resolve));

  /** `lastId`: the writer's own last event (its start); `followed`: whether to start at the short interval. */
  constructor(
    private readonly settings: WriterSettings,
    private readonly channels: StreamChannels,
    private lastId: string,
    followed: boolean,
  ) {
    this.followed = followed;
    this.armTick();
  }

  write(text: string): void {
    if (this.ending || this.gaveUp || text === '') return;
    if (this.pending === '') this.pendingSince = Date.now();
    this.pending += text;
    if (this.pending.length > this.settings.maxPendingChars) {
      return this.giveUp(new Error(`${this.pending.length} characters are waiting for the store (limit ${this.settings.maxPendingChars})`));
    }
    this.schedule();
  }

  /** Ends the stream: done, or failed with `reason`. Resolves once that is stored (or could not be). */
  end(reason?: string): Promise<void> {
    if (!this.ending && !this.gaveUp) {
      this.ending = { reason };
      this.schedule();
    }
    return this.finished;
  }

  private schedule(): void {
    if (this.sending || this.gaveUp) return;
    if (this.ending || this.pending.length >= this.settings.maxBatchChars) return void this.flush();
    if (this.pending === '') return;
    const due = this.pendingSince + (this.followed ? this.settings.flushMs : this.settings.idleFlushMs);
    if (this.flushTimer !== undefined && this.flushDue <= due) return;
    clearTimeout(this.flushTimer);
    this.flushDue = due;
    this.flushTimer = setTimeout(() => void this.flush(), Math.max(0, due - Date.now()));
  }

  private async flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flushDue = Infinity;
    if (this.sending || this.gaveUp) return;
    const final = this.ending !== undefined;
    const events = this.takeBatch();
    if (events.length === 0) return;
    this.sending = true;
    try {
      await this.append(events);
    } catch (error) {
      return this.giveUp(error);
    } finally {
      this.sending = false;
    }
    if (final) return this.finish();
    this.armTick();
    this.schedule();
  }

  /** The waiting text as events of at most maxBatchChars, and the end once all text is in. */
  private takeBatch(): NewEvent[] {
    const events: NewEvent[] = [];
    let text = this.pending;
    // A batch that ends inside a surrogate pair would store two lone halves: keep the high one back.
    const holdBack = !this.ending && isHighSurrogate(text.charCodeAt(text.length - 1)) ? 1 : 0;
    this.pending = text.slice(text.length - holdBack);
    if (this.pending !== '') this.pendingSince = Date.now();
    text = text.slice(0, text.length - holdBack);
    while (text.length > 0) {
      let size = Math.min(text.length, this.settings.maxBatchChars);
      if (size < text.length && isHighSurrogate(text.charCodeAt(size - 1))) size--;
      events.push(textEvent(this.channels.stream, ++this.numbered, text.slice(0, size)));
      text = text.slice(size);
    }
    if (this.ending) events.push(...endEvents(this.channels, this.ending.reason));
    return events;
  }

  /**
   * Appends, retrying a failed request with the same events while followers would still wait for
   * them. A request that timed out may have been stored: its text events are numbered, and readers
   * skip a number they had.
   */
  private async append(events: NewEvent[]): Promise<void> {
    const { backend, retention, callTimeoutMs, timeoutMs } = this.settings;
    const giveUpAt = Date.now() + timeoutMs;
    for (let delay = RETRY_FIRST_MS; ; delay = Math.min(delay * 2, RETRY_MAX_MS)) {
      let previous: string | undefined;
      try {
        const ids = await backend.append(events, retention, {
          signal: AbortSignal.timeout(callTimeoutMs),
          onPrevious: (heads) => (previous = heads.get(this.channels.stream)),
        });
        if (previous !== this.lastId) this.followed = true;
        const own = events.map((event, index) => (event.channel === this.channels.stream ? ids[index] : undefined)).filter(Boolean);
        this.lastId = (own.at(-1) as string | undefined) ?? this.lastId;
        return;
      } catch (error) {
        if (Date.now() + delay >= giveUpAt) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** A heartbeat after a third of timeoutMs without an append; re-armed after each one. */
  private armTick(): void {
    clearTimeout(this.tickTimer);
    this.tickTimer = setTimeout(() => void this.tick(), Math.max(1, Math.floor(this.settings.timeoutMs / 3)));
  }

  private async tick(): Promise<void> {
    if (this.sending || this.ending || this.gaveUp) return;
    this.sending = true;
    try {
      await this.append([plainEvent(this.channels.stream, TICK)]);
    } catch (error) {
      return this.giveUp(error);
    } finally {
      this.sending = false;
    }
    this.armTick();
    this.schedule();
  }

  private giveUp(error: unknown): void {
    if (this.gaveUp) return;
    this.gaveUp = true;
    this.pending = '';
    this.settings.onError?.(error, this.channels.id);
    this.finish();
  }

  private finish(): void {
    clearTimeout(this.flushTimer);
    clearTimeout(this.tickTimer);
    this.flushTimer = this.tickTimer = undefined;
    this.resolveFinished();
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
