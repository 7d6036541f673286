import { JSON_MARKER } from '../wire/cursor.js';
import { compareIds } from '../wire/ids.js';

/** The wire says JSON by a `;json` suffix on the event's id, which EventSource hands over as `lastEventId`. */
export function isJsonCursor(cursor: string): boolean {
  return cursor.endsWith(JSON_MARKER);
}

export function decodeData(data: string, cursor: string): unknown {
  return isJsonCursor(cursor) ? JSON.parse(data) : data;
}

function positionsOf(cursor: string): string[] {
  return (isJsonCursor(cursor) ? cursor.slice(0, -JSON_MARKER.length) : cursor).split(',');
}

/**
 * Follows a connection's cursor (one stream id per channel, channels sorted) to tell which channel
 * each event came from, and to drop an event it has already passed.
 */
export class CursorTracker {
  constructor(
    private readonly channels: readonly string[],
    public cursor = '',
  ) {}

  /** Control events state the position outright. */
  reset(cursor: string): void {
    if (cursor) this.cursor = cursor;
  }

  /** The event's channel and id, or undefined when no channel moved forward: a repeat. */
  advance(cursor: string): { channel: string; id: string } | undefined {
    if (!cursor) return { channel: this.channels[0] ?? '', id: '' };
    const next = positionsOf(cursor);
    if (next.length !== this.channels.length) {
      this.reset(cursor);
      return { channel: this.channels[0] ?? '', id: next[0] ?? '' };
    }
    const moved = this.movedChannel(next);
    if (moved < 0) return undefined;
    this.reset(cursor);
    return { channel: this.channels[moved] as string, id: next[moved] as string };
  }

  /**
   * The one position that moved; the newest of several when events of types nobody listens to
   * moved the others (those never reach the helper).
   */
  private movedChannel(next: string[]): number {
    const previous = this.cursor ? positionsOf(this.cursor) : [];
    let moved = -1;
    next.forEach((id, index) => {
      const before = previous.length === next.length ? previous[index] : undefined;
      const ahead = before === undefined || compareIds(id, before) > 0;
      if (ahead && (moved < 0 || compareIds(id, next[moved] as string) > 0)) moved = index;
    });
    return moved;
  }
}
