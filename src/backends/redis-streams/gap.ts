/** Whether events after a cursor are gone from a channel's stream, judged by its XINFO STREAM. */
import { ZERO_ID, compareIds } from '../../wire/ids.js';
import type { ChannelRead } from '../contract.js';
import type { StreamState } from './commands/stream-info.js';

/**
 * Events after `after` are gone when:
 * - `after` is past the head: the stream that issued it was deleted since (it expired, or Redis
 *   restarted empty), and this one never got that far;
 * - XDEL removed a later id;
 * - `after` is older than the first entry kept, and entries were trimmed, or `after` is not 0-0:
 *   a stream never trimmed still holds the first entry it ever had, so a position before that came
 *   from an earlier stream of the same name (expired, then recreated), whose later events are gone.
 * (False alarms: a cursor at exactly the last trimmed entry; a cursor that had seen all of a stream
 * that then expired. Neither can be told apart from a loss.)
 */
export function gapAfter(info: StreamState, after: string): ChannelRead['gap'] {
  const pastHead = compareIds(after, info.head) > 0;
  const deletedLater = compareIds(info.maxDeletedId, after) > 0;
  const beforeFirst = info.firstId !== null && compareIds(after, info.firstId) < 0 && (info.trimmed || after !== ZERO_ID);
  return pastHead || deletedLater || beforeFirst ? { firstId: info.firstId } : undefined;
}
