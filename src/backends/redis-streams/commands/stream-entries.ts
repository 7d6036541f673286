/** Stream entries as XRANGE, XREVRANGE and XREAD return them: `[[id, [field, value, …]], …]`. */
import type { StoredEvent } from '../../contract.js';
import type { RedisReply } from '../transport.js';
import { malformed } from './command.js';

const EXPECTED = 'stream entries';

/** The entries of `command`'s reply as events; a missing stream (null) has none. */
export function decodeEntries(reply: RedisReply, command: string): StoredEvent[] {
  if (reply === null) return [];
  if (!Array.isArray(reply)) throw malformed(command, EXPECTED);
  return reply.map((entry) => toStoredEvent(entry, command));
}

function toStoredEvent(entry: RedisReply, command: string): StoredEvent {
  if (!Array.isArray(entry)) throw malformed(command, EXPECTED);
  const [id, fields] = entry;
  if (typeof id !== 'string' || !Array.isArray(fields)) throw malformed(command, EXPECTED);
  const values = new Map<string, string>();
  for (let index = 0; index + 1 < fields.length; index += 2) values.set(String(fields[index]), String(fields[index + 1]));
  return {
    id,
    type: values.get('type') ?? 'message',
    data: values.get('data') ?? '',
    json: values.get('json') === '1',
  };
}
