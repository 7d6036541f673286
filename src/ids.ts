/**
 * Event ids are Redis stream ids, `<milliseconds>-<sequence>`, ordered numerically.
 * The memory backend mints the same shape so every backend shares one cursor format.
 */

export const ZERO_ID = '0-0';

const STREAM_ID = /^(0|[1-9][0-9]{0,15})-(0|[1-9][0-9]{0,15})$/;

export function isStreamId(value: string): boolean {
  return STREAM_ID.test(value);
}

/** Negative, zero or positive as `a` sorts before, with or after `b`. Both must be stream ids. */
export function compareIds(a: string, b: string): number {
  if (a === b) return 0;
  const dashA = a.indexOf('-');
  const dashB = b.indexOf('-');
  return (
    compareDigits(a.slice(0, dashA), b.slice(0, dashB)) || compareDigits(a.slice(dashA + 1), b.slice(dashB + 1))
  );
}

/** Compares canonical decimal strings without converting (sequences may exceed 2^53). */
function compareDigits(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function maxId(a: string, b: string): string {
  return compareIds(a, b) >= 0 ? a : b;
}
