/**
 * Event ids are Redis stream ids, `<milliseconds>-<sequence>`, ordered numerically.
 * The memory backend mints the same shape so every backend shares one cursor format.
 */

export const ZERO_ID = '0-0';

const STREAM_ID = /^(0|[1-9][0-9]{0,15})-(0|[1-9][0-9]{0,15})$/;

/** The longest stream id STREAM_ID accepts: 16 digits, a dash, 16 digits. */
export const MAX_ID_LENGTH = 33;

export function isStreamId(value: string): boolean {
  return STREAM_ID.test(value);
}

/**
 * Negative, zero or positive as `a` sorts before, with or after `b`. Both must be stream ids.
 * Compares the canonical decimal digits in place: no number conversion (sequences may exceed
 * 2^53) and no allocation, since every connection compares every live event.
 */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const dashA = a.indexOf('-');
  const dashB = b.indexOf('-');
  if (dashA !== dashB) return dashA - dashB; // more millisecond digits is later
  const sequenceLengths = a.length - dashA - (b.length - dashB);
  for (let index = 0; index < dashA; index++) {
    const difference = a.charCodeAt(index) - b.charCodeAt(index);
    if (difference !== 0) return difference;
  }
  if (sequenceLengths !== 0) return sequenceLengths;
  for (let index = dashA + 1; index < a.length; index++) {
    const difference = a.charCodeAt(index) - b.charCodeAt(index);
    if (difference !== 0) return difference;
  }
  return 0;
}
