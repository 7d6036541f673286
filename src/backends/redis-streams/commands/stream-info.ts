/** XINFO STREAM: where a stream starts and ends, and whether entries were removed — for gap detection. */
import { ZERO_ID } from '../../../wire/ids.js';
import type { KeySpace } from '../keys.js';
import type { RedisReply } from '../transport.js';
import { type Command, backendFailure, malformed } from './command.js';

export interface StreamState {
  head: string;
  firstId: string | null;
  /** Entries were removed from the start (trimmed by MAXLEN) — Redis 7 counts entries ever added. */
  trimmed: boolean;
  /** The newest id removed by XDEL (trimming does not move it). */
  maxDeletedId: string;
}

const MISSING: StreamState = { head: ZERO_ID, firstId: null, trimmed: false, maxDeletedId: ZERO_ID };

/** The fields edge-sse needs of a channel's stream; a missing stream reads as empty. */
export function streamInfo(keys: KeySpace, channel: string): Command<StreamState> {
  return {
    args: ['XINFO', 'STREAM', keys.stream(channel)],
    decode(reply) {
      if (reply instanceof Error) {
        if (/no such key/i.test(reply.message)) return MISSING;
        throw backendFailure(reply);
      }
      return toStreamState(reply);
    },
  };
}

/** The reply is a flat list of field names and values. */
function toStreamState(reply: RedisReply): StreamState {
  if (reply !== null && !Array.isArray(reply)) throw malformed('XINFO STREAM', 'a list of fields');
  const fields = new Map<string, RedisReply>();
  const list = reply ?? [];
  for (let index = 0; index + 1 < list.length; index += 2) fields.set(String(list[index]), list[index + 1] as RedisReply);
  const firstEntry = fields.get('first-entry');
  // Redis < 7.0 reports neither entries-added nor max-deleted-entry-id: trimming is then seen only
  // for cursors other than 0-0 (through first-entry, see gap.ts).
  const added = Number(fields.get('entries-added') ?? 0);
  return {
    head: String(fields.get('last-generated-id') ?? ZERO_ID),
    firstId: Array.isArray(firstEntry) ? String(firstEntry[0]) : null,
    trimmed: added > Number(fields.get('length') ?? 0),
    maxDeletedId: String(fields.get('max-deleted-entry-id') ?? ZERO_ID),
  };
}
