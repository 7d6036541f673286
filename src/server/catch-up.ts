/**
 * How a resuming connection reads what it missed: several channels' histories merged into one id
 * order, read in batches sized by bytes. The session does the waiting and the writing.
 */
import type { ChannelRead, StoredEvent } from '../backends/contract.js';
import { compareIds } from '../wire/ids.js';
import { DEFAULT_MAX_EVENT_BYTES } from '../publish/publish.js';

/** One channel's part of a catch-up. */
interface Lane {
  /** The channel's index among the connection's channels. */
  channel: number;
  /** The last id read. */
  after: string;
  /** The live position the connection joined at: later events arrive live. */
  until: string;
  /** The last read's events, from `next` on not yet handed out. */
  batch: StoredEvent[];
  next: number;
  /** Nothing is left to read up to `until`. */
  exhausted: boolean;
}

export interface HistoryEvent {
  channel: number;
  event: StoredEvent;
}

/**
 * Merges channels' histories into one id order. A batch that may be followed by more is a horizon:
 * no event after its last id is handed out before that channel's next batch is read, since the
 * next batch could hold anything after it. Reading stops at the live positions the connection
 * joined at, so that history and the live events after it arrive in the live feed's order.
 */
export class HistoryMerge {
  private lanes: Lane[];

  /** `channels`: the indexes to catch up; `from` and `until`: positions of every channel. */
  constructor(channels: readonly number[], from: readonly string[], until: readonly string[]) {
    this.lanes = channels.map((channel) => ({
      channel,
      after: from[channel] as string,
      until: until[channel] as string,
      batch: [],
      next: 0,
      exhausted: false,
    }));
  }

  get done(): boolean {
    return this.lanes.length === 0;
  }

  /** What to read before more can be handed out: the channels whose batch is used up. */
  toRead(): { channel: number; after: string }[] {
    return this.readable().map(({ channel, after }) => ({ channel, after }));
  }

  /** The reads of `toRead()`'s channels, in its order, each of at most `limit` events. */
  take(reads: readonly ChannelRead[], limit: number): void {
    this.readable().forEach((lane, position) => {
      const { events } = reads[position] as ChannelRead;
      let end = events.length;
      while (end > 0 && compareIds((events[end - 1] as StoredEvent).id, lane.until) > 0) end--;
      lane.batch = end === events.length ? events : events.slice(0, end);
      lane.next = 0;
      lane.after = events.at(-1)?.id ?? lane.after;
      lane.exhausted = events.length < limit || compareIds(lane.after, lane.until) >= 0;
    });
    this.lanes = this.lanes.filter((lane) => !this.usedUp(lane) || !lane.exhausted);
  }

  /** The next event in id order, or undefined when a channel must be read first (or all is done). */
  next(): HistoryEvent | undefined {
    let first: Lane | undefined;
    for (const lane of this.lanes) {
      if (this.usedUp(lane)) return undefined; // not exhausted, or it would have been dropped
      if (!first || compareIds(idAt(lane), idAt(first)) < 0) first = lane;
    }
    if (!first) return undefined;
    const event = first.batch[first.next++] as StoredEvent;
    if (this.usedUp(first) && first.exhausted) this.lanes.splice(this.lanes.indexOf(first), 1);
    return { channel: first.channel, event };
  }

  private readable(): Lane[] {
    return this.lanes.filter((lane) => this.usedUp(lane));
  }

  private usedUp(lane: Lane): boolean {
    return lane.next >= lane.batch.length;
  }
}

function idAt(lane: Lane): string {
  return (lane.batch[lane.next] as StoredEvent).id;
}

/** What a first read assumes of events it has not seen: as large as `sendEvent` allows by default. */
const ASSUMED_FRAME_BYTES = DEFAULT_MAX_EVENT_BYTES;

/**
 * Sizes reads by bytes, which the store cannot: each asks for as many events per channel as fill
 * the room left, at the size of the frames sent so far (at least one).
 */
export class ReadSizer {
  private bytes = 0;
  private frames = 0;

  constructor(private readonly maxEvents: number) {}

  /** A frame of `bytes` was written. */
  record(bytes: number): void {
    this.bytes += bytes;
    this.frames++;
  }

  /** Events to ask each of `channels` channels for, so that the read is about `room` bytes. */
  limit(room: number, channels: number): number {
    const perFrame = this.frames === 0 ? ASSUMED_FRAME_BYTES : this.bytes / this.frames;
    return Math.max(1, Math.min(this.maxEvents, Math.floor(room / (perFrame * channels))));
  }
}
