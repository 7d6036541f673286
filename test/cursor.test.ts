import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatCursor, parseCursor } from '../src/wire/cursor.js';
import { type EdgeSSEError, ValidationError } from '../src/common/errors.js';
import { compareIds, isStreamId } from '../src/wire/ids.js';

describe('cursor', () => {
  it('is the stream id itself for one channel', () => {
    expect(formatCursor(['1732780000000-0'])).toBe('1732780000000-0');
    expect(parseCursor('1732780000000-0', 1)).toEqual({ positions: ['1732780000000-0'] });
  });

  it('joins positions for several channels and marks JSON data', () => {
    const text = formatCursor(['1-0', '0-0', '17-3'], true);
    expect(text).toBe('1-0,0-0,17-3;json');
    expect(parseCursor(text, 3)).toEqual({ positions: ['1-0', '0-0', '17-3'] });
  });

  it.each([
    ['garbage', 'hello', 1, /not a stream id/],
    ['negative', '-1-0', 1, /not a stream id/],
    ['missing sequence', '1732780000000', 1, /not a stream id/],
    ['leading zeros', '01-0', 1, /not a stream id/],
    ['empty', '', 1, /not a stream id/],
    ['wrong channel count', '1-0,2-0', 3, /2 position\(s\) but 3 channel/],
    ['too long for one channel', '1'.repeat(40), 1, /40 characters long; a cursor for 1 channel\(s\) is at most 38/],
    ['too long for its channels', '1-0,'.repeat(2000), 3, /for 3 channel\(s\) is at most 106/],
    ['space', ' 1-0', 1, /not a stream id/],
  ])('refuses %s with a typed error that says what is wrong', (_, text, channels, message) => {
    let caught: unknown;
    try {
      parseCursor(text, channels);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    expect((caught as EdgeSSEError).code).toBe('INVALID_CURSOR');
    expect((caught as Error).message).toMatch(message);
  });

  it('accepts back every cursor it can write, for as many channels as a connection may have', () => {
    const longest = '9999999999999999-9999999999999999';
    for (const channels of [1, 2, 300, 1000]) {
      const positions = Array.from({ length: channels }, () => longest);
      expect(parseCursor(formatCursor(positions, true), channels).positions).toEqual(positions);
    }
  });

  it('property: the parser accepts what the formatter writes and throws only its own errors', () => {
    const streamId = fc.tuple(fc.nat(), fc.nat()).map(([ms, seq]) => `${ms}-${seq}`);
    fc.assert(
      fc.property(fc.array(streamId, { minLength: 1, maxLength: 16 }), fc.boolean(), (positions, json) => {
        expect(parseCursor(formatCursor(positions, json), positions.length).positions).toEqual(positions);
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), fc.integer({ min: 1, max: 16 }), (text, channels) => {
        try {
          parseCursor(text, channels);
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
        }
      }),
    );
  });
});

describe('stream ids', () => {
  it('compare numerically, milliseconds first, beyond 2^53', () => {
    expect(compareIds('9-0', '10-0')).toBeLessThan(0);
    expect(compareIds('10-2', '10-10')).toBeLessThan(0);
    expect(compareIds('5-5', '5-5')).toBe(0);
    expect(compareIds('9007199254740993-0', '9007199254740992-0')).toBeGreaterThan(0);
    expect(isStreamId('0-0')).toBe(true);
    expect(isStreamId('1-')).toBe(false);
  });

  it('orders ids exactly as their numbers do, whatever their lengths', () => {
    const part = fc.oneof(fc.bigInt({ min: 0n, max: 20n }), fc.bigInt({ min: 0n, max: 10n ** 16n - 1n }));
    const id = fc.tuple(part, part);
    const sign = (n: number) => Math.sign(n);
    fc.assert(
      fc.property(id, id, ([msA, seqA], [msB, seqB]) => {
        const expected = msA !== msB ? (msA < msB ? -1 : 1) : seqA !== seqB ? (seqA < seqB ? -1 : 1) : 0;
        expect(sign(compareIds(`${msA}-${seqA}`, `${msB}-${seqB}`))).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });
});
