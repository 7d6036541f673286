/**
 * A follower of a resumable stream: joins the channel's live reader (the hub the stream handler
 * shares, or one of its own where readers cannot be shared) and, in the same moment, reads the
 * stream from its start (or a cursor) together with its end channel. Then it passes on the
 * history up to where the live reader stands, then the live events, each once, in order, until
 * the stream's end.
 *
 * If nothing comes — no text, no heartbeat — for the producer's `timeoutMs`, the producer is
 * gone (its process died, or it lost the store): the follower marks the stream failed, for
 * itself and every other follower, and ends with that error.
 */
import type { Backend, ChannelRead, Retention, StoredEvent } from '../backends/contract.js';
import type { BackendError } from '../common/errors.js';
import type { Hub, HubListener } from '../server/hub.js';
import { ZERO_ID, compareIds } from '../wire/ids.js';
import { DONE, FAILED, FOLLOW, START, TEXT, endEvents, plainEvent, readText, readTimeout, writtenAt } from './events.js';
import type { StreamChannels } from './names.js';
import { BoundedOutput } from './output.js';
import { ResumableStreamError } from './errors.js';

export interface FollowerSettings {
  backend: Backend;
  /** The hub to join, and whether it is this follower's own (closed when it ends). */
  hub(): { hub: Hub; own: boolean };
  retention: Retention;
  replayFinished: boolean;
  /** Used until the stream's start event names the producer's own. */
  timeoutMs: number;
  callTimeoutMs: number;
  maxQueuedChars: number;
  readBatch: number;
}

export interface ResumePoint {
  skipCharacters: number;
  /** Resume after this event (a chunk's `cursor`). */
  cursor: string | undefined;
}

export interface Chunk {
  text: string;
  /** Where the stream stands after this text: resume from it with `{ cursor }`. */
  cursor: string;
}

/** `undefined`: no such stream; `null`: it is done (and not replayed); else the stream of chunks. */
export async function follow(
  settings: FollowerSettings,
  channels: StreamChannels,
  from: ResumePoint,
): Promise<ReadableStream<Chunk> | null | undefined> {
  const follower = new Follower(settings, channels, from);
  return follower.open();
}

class Follower implements HubListener {
  private readonly hub: Hub;
  private readonly ownHub: boolean;
  private joined = false;
  /** Live events that came while catching up; null once live. */
  private buffered: StoredEvent[] | null = [];
  private lastId: string;
  private lastNumber = 0;
  private toSkip: number;
  private timeoutMs: number;
  /** When the producer was last heard of (local clock). */
  private heardAt = Date.now();
  private watchdog: ReturnType<typeof setTimeout> | undefined;
  private marking = false;
  private sawFollow = false;
  private ended = false;
  private output!: BoundedOutput<Chunk>;

  constructor(
    private readonly settings: FollowerSettings,
    private readonly channels: StreamChannels,
    from: ResumePoint,
  ) {
    ({ hub: this.hub, own: this.ownHub } = settings.hub());
    this.lastId = from.cursor ?? ZERO_ID;
    this.toSkip = from.skipCharacters;
    this.timeoutMs = settings.timeoutMs;
  }

  /**
   * Reads first: a missing or finished stream costs that one request and no reader, and a
   * running one has its first bytes before the live reader has found where it stands.
   */
  async open(): Promise<ReadableStream<Chunk> | null | undefined> {
    const { stream, end } = this.channels;
    const requests = [
      { channel: stream, after: this.lastId },
      { channel: end, after: ZERO_ID },
    ];
    const [history, ending] = (await this.settings.backend.read(requests, this.settings.readBatch, this.call())) as [
      ChannelRead,
      ChannelRead,
    ];
    if (history.head === ZERO_ID) return (this.stop(), undefined);
    const finished = ending.events.length > 0;
    if (finished && !this.settings.replayFinished) return (this.stop(), null);
    this.output = new BoundedOutput<Chunk>(
      this.settings.maxQueuedChars,
      (chunk) => chunk.text.length,
      () => this.stop(),
    );
    this.take(history.events, false);
    if (!this.ended) void this.catchUp(history);
    return this.output.stream;
  }

  onEvents(_channel: string, events: StoredEvent[]): void {
    if (this.buffered) this.buffered.push(...events);
    else this.take(events, true);
  }

  onError(error: BackendError): void {
    this.fail(error);
  }

  /** Joins the live reader, reads on up to where it stands, then passes on what came live meanwhile. */
  private async catchUp(first: ChannelRead): Promise<void> {
    try {
      this.joined = true;
      const [livePosition] = (await this.hub.join([this.channels.stream], this)) as [string];
      let read = first;
      let position = read.events.at(-1)?.id ?? this.lastId;
      while (!this.ended && compareIds(position, livePosition) < 0) {
        [read] = (await this.settings.backend.read(
          [{ channel: this.channels.stream, after: position }],
          this.settings.readBatch,
          this.call(),
        )) as [ChannelRead];
        if (read.events.length === 0) break; // the rest is gone (trimmed or expired)
        this.take(read.events, false);
        position = read.events.at(-1)!.id;
      }
      if (this.ended) return;
      const live = this.buffered ?? [];
      this.buffered = null;
      this.take(live, true);
      if (this.ended) return;
      if (!this.sawFollow) void this.announce();
      this.armWatchdog();
    } catch (error) {
      this.fail(error);
    }
  }

  /** Passes on events after the last one taken; `live` ones were just written, history by its id's time. */
  private take(events: readonly StoredEvent[], live: boolean): void {
    for (const event of events) {
      if (this.ended) return;
      if (compareIds(event.id, this.lastId) <= 0) continue;
      this.lastId = event.id;
      this.heardAt = live ? Date.now() : Math.min(Date.now(), writtenAt(event.id));
      this.handle(event);
    }
    if (live && this.buffered === null) this.armWatchdog();
  }

  private handle(event: StoredEvent): void {
    switch (event.type) {
      case START:
        this.timeoutMs = readTimeout(event) ?? this.timeoutMs;
        return;
      case TEXT:
        return this.passText(event);
      case FOLLOW:
        this.sawFollow = true;
        return;
      case DONE:
        return this.finish();
      case FAILED:
        return this.fail(new ResumableStreamError(this.channels.id, event.data));
    }
  }

  private passText(event: StoredEvent): void {
    const text = readText(event);
    if (!text || text.number <= this.lastNumber) return; // a batch stored twice (the producer retried)
    this.lastNumber = text.number;
    let chunk = text.text;
    if (this.toSkip > 0) {
      const skipped = Math.min(this.toSkip, chunk.length);
      this.toSkip -= skipped;
      chunk = chunk.slice(skipped);
    }
    if (chunk !== '') this.output.push({ text: chunk, cursor: event.id });
  }

  /** The first follower's mark: it makes the producer send at the short interval. Best effort. */
  private async announce(): Promise<void> {
    const { stream } = this.channels;
    await this.settings.backend
      .append([plainEvent(stream, FOLLOW)], this.settings.retention, {
        ...this.call(),
        idempotency: { key: `edge-sse/resumable:follow:${stream}`, ttlSeconds: this.settings.retention.ttlSeconds },
      })
      .catch(() => undefined); // the producer then keeps its longer interval: later text, nothing lost
  }

  private armWatchdog(): void {
    if (this.ended) return;
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => void this.producerGone(), Math.max(0, this.heardAt + this.timeoutMs - Date.now()));
  }

  /** Marks the stream failed (unless another end got there first), then ends as the stream says. */
  private async producerGone(): Promise<void> {
    if (this.ended || this.marking) return;
    this.marking = true;
    try {
      const reason = `The producer sent nothing for ${this.timeoutMs} ms: its process stopped or lost the store`;
      await this.settings.backend.append(endEvents(this.channels, reason), this.settings.retention, this.call());
      const [read] = (await this.settings.backend.read(
        [{ channel: this.channels.stream, after: this.lastId }],
        this.settings.readBatch,
        this.call(),
      )) as [ChannelRead];
      this.take(read.events, true);
    } catch (error) {
      this.fail(error);
    } finally {
      this.marking = false;
    }
  }

  private call() {
    return { signal: AbortSignal.timeout(this.settings.callTimeoutMs) };
  }

  private finish(): void {
    if (this.ended) return;
    this.output?.close();
    this.stop();
  }

  private fail(error: unknown): void {
    if (this.ended) return;
    this.output?.fail(error);
    this.stop();
  }

  private stop(): void {
    this.ended = true;
    clearTimeout(this.watchdog);
    // Leaving while the join is under way is fine: the hub drops the listener (and its reader).
    if (this.joined) this.hub.leave([this.channels.stream], this);
    this.joined = false;
    if (this.ownHub) this.hub.close();
  }
}
