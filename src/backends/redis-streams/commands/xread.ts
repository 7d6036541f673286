/** XREAD over several channels: one request however many channels; blocking only over TCP. */
import type { StoredEvent } from '../../contract.js';
import type { KeySpace } from '../keys.js';
import type { RedisReply } from '../transport.js';
import { type Command, malformed, valueOf } from './command.js';
import { decodeEntries } from './stream-entries.js';

/** Up to `limit` events of each channel after its position; `blockMs`: wait that long for any. */
export function xread(
  keys: KeySpace,
  positions: ReadonlyMap<string, string>,
  limit: number,
  blockMs?: number,
): Command<Map<string, StoredEvent[]>> {
  const channels = [...positions.keys()];
  const block = blockMs === undefined ? [] : ['BLOCK', blockMs];
  return {
    args: [
      'XREAD',
      'COUNT',
      limit,
      ...block,
      'STREAMS',
      ...channels.map((channel) => keys.stream(channel)),
      ...channels.map((channel) => positions.get(channel) as string),
    ],
    decode: (reply) => decodeXread(keys, valueOf(reply)),
  };
}

/**
 * XREAD's reply, `[[key, entries], …]` or null (nothing new), as events per channel — for a feed
 * that sends the command itself (on a connection of its own) and so holds the reply.
 */
export function decodeXread(keys: KeySpace, reply: RedisReply): Map<string, StoredEvent[]> {
  const byChannel = new Map<string, StoredEvent[]>();
  if (reply === null) return byChannel;
  if (!Array.isArray(reply)) throw malformed('XREAD', 'streams of entries');
  for (const stream of reply) {
    if (!Array.isArray(stream) || typeof stream[0] !== 'string') throw malformed('XREAD', 'streams of entries');
    byChannel.set(keys.channelOf(stream[0]), decodeEntries(stream[1] ?? null, 'XREAD'));
  }
  return byChannel;
}
