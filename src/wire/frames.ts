/**
 * The SSE wire format (WHATWG HTML, "Server-sent events"), as pure functions.
 * Every function returns text; `encodeText` turns it into the bytes a connection carries.
 */
import { ValidationError } from '../common/errors.js';

export interface SSEFrame {
  /** The event type (`event:`); omitted means `message`. */
  event?: string;
  /** The payload; line breaks (CR, LF, CRLF) become several `data:` lines. */
  data: string;
  /** The id a reconnecting client sends back as `Last-Event-ID`. */
  id?: string;
}

const LINE_BREAK = /\r\n|\r|\n/;

function hasLineBreak(text: string): boolean {
  return text.indexOf('\n') !== -1 || text.indexOf('\r') !== -1;
}

/** One template string, and `indexOf` rather than regexes: twice as fast as before (bench/README.md). */
export function formatEvent({ id, event, data }: SSEFrame): string {
  const idLine = id === undefined ? '' : `id: ${assertId(id)}\n`;
  const eventLine = event === undefined ? '' : `event: ${assertSingleLine(event, 'event')}\n`;
  return `${idLine}${eventLine}${formatData(data)}\n`;
}

/**
 * One `data:` line per line of the payload. The space after the colon is always written, so a
 * payload that starts with a space keeps it (the parser strips exactly one).
 */
export function formatData(data: string): string {
  if (!hasLineBreak(data)) return `data: ${data}\n`;
  return data
    .split(LINE_BREAK)
    .map((line) => `data: ${line}\n`)
    .join('');
}

/** Comments are ignored by clients; they keep proxies and load balancers from closing an idle connection. */
export function formatComment(text = ''): string {
  if (!hasLineBreak(text)) return `: ${text}\n\n`;
  return (
    text
      .split(LINE_BREAK)
      .map((line) => `: ${line}\n`)
      .join('') + '\n'
  );
}

/** A `retry:` hint (the client's reconnection delay), optionally with a comment saying why. */
export function formatRetry(milliseconds: number, comment?: string): string {
  if (!Number.isInteger(milliseconds) || milliseconds < 0) {
    throw new ValidationError('INVALID_FRAME', `retry must be a whole number of milliseconds ≥ 0, got ${milliseconds}`);
  }
  return `retry: ${milliseconds}\n${comment === undefined ? '\n' : formatComment(comment)}`;
}

const encoder = new TextEncoder();

export function encodeText(text: string): Uint8Array {
  return encoder.encode(text);
}

function assertId(id: string): string {
  if (hasLineBreak(id) || id.indexOf('\0') !== -1) {
    throw new ValidationError('INVALID_FRAME', 'SSE id must not contain a line break or NUL');
  }
  return id;
}

function assertSingleLine(value: string, field: string): string {
  if (hasLineBreak(value)) throw new ValidationError('INVALID_FRAME', `SSE ${field} must not contain a line break`);
  return value;
}
