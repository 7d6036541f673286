import { ValidationError } from '../common/errors.js';

export const MAX_NAME_LENGTH = 128;
const RESERVED_PREFIX = 'sse:';
export const DEFAULT_CHANNEL = 'sse';

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const CHANNEL_PATTERN = /^[A-Za-z0-9._~:@/-]{1,128}$/;

/**
 * Channel names are safe in URLs and Redis keys: 1–128 of `A-Z a-z 0-9 . _ ~ : @ / -`, with no
 * `..` and no `.` path segment. The names go into URL paths (Upstash's `/subscribe/<channel>`),
 * and a URL resolves `a/./b` to `a/b`: such a name would read another channel's events.
 */
export function assertChannel(channel: unknown): string {
  if (typeof channel !== 'string' || !CHANNEL_PATTERN.test(channel) || channel.includes('..') || hasDotSegment(channel)) {
    throw new ValidationError(
      'INVALID_CHANNEL',
      `Invalid channel ${describe(channel)}: use 1–${MAX_NAME_LENGTH} characters of A-Z a-z 0-9 . _ ~ : @ / -, ` +
        'without ".." or a "." between slashes',
    );
  }
  return channel;
}

/** `.` alone, or `.` as a whole segment between slashes (`./a`, `a/./b`, `a/.`). */
function hasDotSegment(channel: string): boolean {
  return channel === '.' || channel.startsWith('./') || channel.endsWith('/.') || channel.includes('/./');
}

/**
 * Event types: non-empty, no line break, well-formed UTF-16 (a lone surrogate reaches the wire as
 * U+FFFD, so no listener could name it), at most 128 characters, not in the reserved `sse:` namespace.
 */
export function assertEventType(type: unknown): string {
  const problem = eventTypeProblem(type);
  if (problem) throw new ValidationError('INVALID_EVENT_TYPE', `Invalid event type ${describe(type)}: ${problem}`);
  return type as string;
}

function eventTypeProblem(type: unknown): string | undefined {
  if (typeof type !== 'string') return 'it must be a string';
  if (type.length === 0) return 'it must not be empty';
  if (type.length > MAX_NAME_LENGTH) return `use at most ${MAX_NAME_LENGTH} characters`;
  if (/[\r\n]/.test(type)) return 'it must not contain CR or LF';
  if (LONE_SURROGATE.test(type)) return 'it has a lone UTF-16 surrogate, which UTF-8 cannot carry';
  if (type.startsWith(RESERVED_PREFIX)) return `names starting with "${RESERVED_PREFIX}" are reserved for edge-sse's control events`;
  return undefined;
}

/** A short, printable rendering of a bad value for error messages. */
export function describe(value: unknown): string {
  if (typeof value !== 'string') return value === null ? 'null' : typeof value;
  const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return JSON.stringify(shown) + (value.length > 40 ? ` (${value.length} characters)` : '');
}
