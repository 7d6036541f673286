/** Reading one channel's stream: what came after a cursor (XRANGE), or the newest events (XREVRANGE). */
import { ZERO_ID } from '../../../wire/ids.js';
import type { StoredEvent } from '../../contract.js';
import type { KeySpace } from '../keys.js';
import { type Command, valueOf } from './command.js';
import { decodeEntries } from './stream-entries.js';

/** Up to `limit` events after `after`, oldest first. */
export function rangeAfter(keys: KeySpace, channel: string, after: string, limit: number): Command<StoredEvent[]> {
  return {
    args: ['XRANGE', keys.stream(channel), `(${after}`, '+', 'COUNT', limit],
    decode: (reply) => decodeEntries(valueOf(reply), 'XRANGE'),
  };
}

/** The newest `count` events (at least one, for the head), newest first. */
export function newestFirst(keys: KeySpace, channel: string, count: number): Command<StoredEvent[]> {
  return {
    args: ['XREVRANGE', keys.stream(channel), '+', '-', 'COUNT', Math.max(count, 1)],
    decode: (reply) => decodeEntries(valueOf(reply), 'XREVRANGE'),
  };
}

/** The id of the newest event of a `newestFirst` read, or 0-0 for an empty or missing stream. */
export function headOf(newestFirst: StoredEvent[]): string {
  return newestFirst[0]?.id ?? ZERO_ID;
}
