/**
 * The SSE wire format (WHATWG HTML, "Server-sent events"), as pure functions.
 * Every function returns text; `encodeText` turns it into the bytes a stream carries.
 */

export interface SSEFrame {
  /** The event type (`event:`); omitted means `message`. */
  event?: string;
  /** The payload; line breaks (CR, LF, CRLF) become several `data:` lines. */
  data: string;
  /** The id a reconnecting client sends back as `Last-Event-ID`. */
  id?: string;
}

const LINE_BREAK = /\r\n|\r|\n/;
const FORBIDDEN_IN_ID = /[\r\n\0]/;

export function formatEvent(frame: SSEFrame): string {
  let text = '';
  if (frame.id !== undefined) text += `id: ${assertFieldValue(frame.id, 'id', FORBIDDEN_IN_ID)}\n`;
  if (frame.event !== undefined) text += `event: ${assertFieldValue(frame.event, 'event', LINE_BREAK)}\n`;
  return text + formatData(frame.data) + '\n';
}

/**
 * One `data:` line per line of the payload. The space after the colon is always written, so a
 * payload that starts with a space keeps it (the parser strips exactly one).
 */
export function formatData(data: string): string {
  if (!LINE_BREAK.test(data)) return `data: ${data}\n`;
  return data
    .split(LINE_BREAK)
    .map((line) => `data: ${line}\n`)
    .join('');
}

/** Comments are ignored by clients; they keep proxies and load balancers from closing the stream. */
export function formatComment(text = ''): string {
  if (!LINE_BREAK.test(text)) return `: ${text}\n\n`;
  return (
    text
      .split(LINE_BREAK)
      .map((line) => `: ${line}\n`)
      .join('') + '\n'
  );
}

export function formatRetry(milliseconds: number): string {
  if (!Number.isInteger(milliseconds) || milliseconds < 0) {
    throw new RangeError(`retry must be a whole number of milliseconds ≥ 0, got ${milliseconds}`);
  }
  return `retry: ${milliseconds}\n\n`;
}

const encoder = new TextEncoder();

export function encodeText(text: string): Uint8Array {
  return encoder.encode(text);
}

function assertFieldValue(value: string, field: string, forbidden: RegExp): string {
  if (forbidden.test(value)) throw new RangeError(`SSE ${field} must not contain a line break or NUL`);
  return value;
}
