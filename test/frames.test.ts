import { createParser, type EventSourceMessage } from 'eventsource-parser';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/common/errors.js';
import { formatComment, formatData, formatEvent, formatRetry } from '../src/wire/frames.js';
import { TRICKY_PAYLOADS } from './helpers/payloads.js';

/** Parses SSE text with eventsource-parser, feeding it in `chunkSize` pieces. */
function parse(text: string, chunkSize = text.length || 1) {
  const events: EventSourceMessage[] = [];
  const comments: string[] = [];
  const retries: number[] = [];
  const parser = createParser({
    onEvent: (event) => events.push(event),
    onComment: (comment) => comments.push(comment),
    onRetry: (retry) => retries.push(retry),
  });
  for (let start = 0; start < text.length; start += chunkSize) parser.feed(text.slice(start, start + chunkSize));
  return { events, comments, retries };
}

/** What SSE can deliver: the data with every line break turned into LF. */
const delivered = (data: string) => data.replace(/\r\n|\r/g, '\n');

describe('formatEvent', () => {
  it('writes id, event and data fields and ends with a blank line', () => {
    expect(formatEvent({ id: '1-0', event: 'greeting', data: 'hello' })).toBe('id: 1-0\nevent: greeting\ndata: hello\n\n');
    expect(formatEvent({ data: 'plain' })).toBe('data: plain\n\n');
  });

  it('splits data at CR, LF and CRLF into several data lines', () => {
    expect(formatData('a\r\nb\rc\nd')).toBe('data: a\ndata: b\ndata: c\ndata: d\n');
  });

  it('gives an empty string one data line, so EventSource still dispatches it', () => {
    expect(formatData('')).toBe('data: \n');
  });

  it('refuses an id with CR, LF or NUL and an event name with a line break', () => {
    for (const id of ['a\nb', 'a\rb', 'a\0b']) expect(() => formatEvent({ id, data: '' })).toThrow(/id must not/);
    expect(() => formatEvent({ event: 'a\nb', data: '' })).toThrow(/event must not/);
  });

  it('writes comments and retry hints', () => {
    expect(formatComment('hi')).toBe(': hi\n\n');
    expect(formatComment('a\nb')).toBe(': a\n: b\n\n');
    expect(formatRetry(1500)).toBe('retry: 1500\n\n');
    expect(formatRetry(1500, 'why')).toBe('retry: 1500\n: why\n\n');
    expect(() => formatRetry(-1)).toThrow(ValidationError);
    expect(() => formatRetry(1.5)).toThrow(/whole number/);
  });
});

describe('wire format judged by eventsource-parser', () => {
  for (const [name, data] of Object.entries(TRICKY_PAYLOADS)) {
    it(`delivers ${name} exactly (line breaks as LF)`, () => {
      const text = formatEvent({ id: '5-1', event: 'tricky', data });
      for (const chunkSize of [text.length, 1, 7]) {
        const { events } = parse(text, chunkSize);
        expect(events).toEqual([{ id: '5-1', event: 'tricky', data: delivered(data) }]);
      }
    });
  }

  it('keeps comments and retry hints out of the events', () => {
    const { events, comments, retries } = parse(formatRetry(1000) + formatComment('ping') + formatEvent({ data: 'x' }));
    expect(events).toHaveLength(1);
    expect(comments).toEqual(['ping']);
    expect(retries).toEqual([1000]);
  });

  it('property: any string data and any valid name survive encode → parse', () => {
    const eventName = fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 128 })
      .filter((name) => !/[\r\n]/.test(name) && !name.startsWith('sse:') && name.length <= 128);
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 500 }), eventName, fc.integer({ min: 1, max: 64 }), (data, event, chunk) => {
        const { events } = parse(formatEvent({ id: '1-0', event, data }), chunk);
        expect(events).toEqual([{ id: '1-0', event, data: delivered(data) }]);
      }),
      { numRuns: 500 },
    );
  });
});
