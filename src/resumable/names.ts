/**
 * Where a resumable stream lives: two edge-sse channels per stream id.
 *
 * - `<keyPrefix>/<id>`: the stream itself — its start, its text in batches, heartbeats, the first
 *   follower's mark, and how it ended.
 * - `<keyPrefix>/<id>~end`: only how it ended, so that whether a stream is done is one read of
 *   a head, however long the stream.
 *
 * Ids come from users (a chat id in a URL): they may hold `A-Z a-z 0-9 _ - . : @`, no `..`,
 * and neither `/` nor `~`, so that no id names another id's channel or another prefix's.
 */
import { ValidationError, invalidOption } from '../common/errors.js';
import { MAX_NAME_LENGTH, describe } from '../wire/names.js';

export const DEFAULT_KEY_PREFIX = 'resumable-stream';
const END_SUFFIX = '~end';
const ID_PATTERN = /^[A-Za-z0-9_.:@-]+$/;

export interface StreamChannels {
  id: string;
  /** The stream's events. */
  stream: string;
  /** How the stream ended, once it has. */
  end: string;
}

export function assertKeyPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || prefix.length === 0 || prefix.length > 64 || !ID_PATTERN.test(prefix) || prefix.includes('..')) {
    throw invalidOption(`Option keyPrefix must be 1–64 characters of A-Z a-z 0-9 _ - . : @ (no "..", "/" or "~"), got ${describe(prefix)}`);
  }
  return prefix;
}

/** The channels of stream `id`; a ValidationError (INVALID_CHANNEL) says what is wrong with a bad id. */
export function channelsOf(prefix: string, id: unknown): StreamChannels {
  const longest = MAX_NAME_LENGTH - prefix.length - 1 - END_SUFFIX.length;
  if (typeof id !== 'string' || id.length === 0 || id.length > longest || !ID_PATTERN.test(id) || id.includes('..') || id === '.') {
    throw new ValidationError(
      'INVALID_CHANNEL',
      `Invalid resumable stream id ${describe(id)}: use 1–${longest} characters of A-Z a-z 0-9 _ - . : @ ` +
        '(no "..", "/" or "~"), such as a chat or message id',
    );
  }
  const stream = `${prefix}/${id}`;
  return { id, stream, end: stream + END_SUFFIX };
}
