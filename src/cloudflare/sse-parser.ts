/**
 * Reads a text/event-stream as the WHATWG rules say (the `EventSource` parsing algorithm), for
 * the streams a channel's object sends to the objects that relay it (relay-feed.ts).
 */
export interface ParsedMessage {
  /** The `id:` of this message, or the last one seen before it. */
  id: string | undefined;
  /** `message` when the frame names none. */
  event: string;
  data: string;
}

export interface ParserListener {
  onMessage(message: ParsedMessage): void;
  onRetry(milliseconds: number): void;
}

export class SSEParser {
  private buffer = '';
  private decoder = new TextDecoder();
  private data: string[] = [];
  private event = '';
  private lastId: string | undefined;
  /** The last chunk ended in CR: a LF starting the next one belongs to it. */
  private afterCR = false;

  constructor(private listener: ParserListener) {}

  push(chunk: Uint8Array): void {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    let start = 0;
    if (this.buffer.length > 0) {
      if (this.afterCR && this.buffer.startsWith('\n')) start = 1; // the LF of a CRLF split across chunks
      this.afterCR = false;
    }
    for (;;) {
      const end = lineEnd(this.buffer, start);
      if (end === -1) break;
      this.line(this.buffer.slice(start, end));
      if (this.buffer[end] === '\r' && end + 1 === this.buffer.length) this.afterCR = true;
      start = end + (this.buffer[end] === '\r' && this.buffer[end + 1] === '\n' ? 2 : 1);
    }
    this.buffer = this.buffer.slice(start);
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.listener.onRetry(Number(value));
  }

  private dispatch(): void {
    const { data, event } = this;
    this.data = [];
    this.event = '';
    if (data.length === 0) return;
    this.listener.onMessage({ id: this.lastId, event: event || 'message', data: data.join('\n') });
  }
}

/** The index of the next CR or LF at or after `from`, or -1. */
function lineEnd(text: string, from: number): number {
  for (let index = from; index < text.length; index++) {
    const char = text[index];
    if (char === '\n' || char === '\r') return index;
  }
  return -1;
}
