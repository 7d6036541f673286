import { ValidationError } from '../common/errors.js';
import { MAX_ID_LENGTH, isStreamId } from './ids.js';
import { describe } from './names.js';

/**
 * The SSE `id:` of every event is a cursor: the stream id of the last event sent on each of the
 * connection's channels (sorted by name), joined by commas. One channel: just the stream id,
 * which is also the id `sendEvent` returned. A `;json` suffix marks an event whose data is JSON.
 *
 *   1732780000000-0               one channel
 *   1732780000000-0,0-0;json      two channels, JSON data
 */
export interface ParsedCursor {
  /** One stream id per channel, in the order of the sorted channel list. */
  positions: string[];
}

export const JSON_MARKER = ';json';

export function formatCursor(positions: readonly string[], json = false): string {
  const text = positions.length === 1 ? (positions[0] as string) : positions.join(',');
  return json ? text + JSON_MARKER : text;
}

/** Parses a `Last-Event-ID` for a connection to `channelCount` channels; throws a ValidationError saying what is wrong. */
export function parseCursor(text: string, channelCount: number): ParsedCursor {
  const maxLength = maxCursorLength(channelCount);
  if (text.length > maxLength) {
    throw invalid(`it is ${text.length} characters long; a cursor for ${channelCount} channel(s) is at most ${maxLength}`);
  }
  const body = text.endsWith(JSON_MARKER) ? text.slice(0, -JSON_MARKER.length) : text;
  const positions = body.split(',');
  if (positions.length !== channelCount) {
    throw invalid(
      `it holds ${positions.length} position(s) but ${channelCount} channel(s) were requested; ` +
        'resume with the same channels it came from, or connect without it',
    );
  }
  const bad = positions.find((position) => !isStreamId(position));
  if (bad !== undefined) throw invalid(`${describe(bad)} is not a stream id like 1732780000000-0`);
  return { positions };
}

/** The longest cursor `formatCursor` writes for `channelCount` channels: checked before splitting anything. */
function maxCursorLength(channelCount: number): number {
  return channelCount * (MAX_ID_LENGTH + 1) - 1 + JSON_MARKER.length;
}

function invalid(reason: string): ValidationError {
  return new ValidationError('INVALID_CURSOR', `Invalid Last-Event-ID: ${reason}`);
}
