/**
 * The producer side of a resumable stream: reads the source to its end, whoever reads the
 * producer's own output — the first client may leave, and followers still get the rest — and
 * passes each chunk both to that output at once and to the writer, which stores it in batches.
 * However the source ends (done, an error, a cancellation), the stream is marked ended so that
 * followers end too.
 */
import { ValidationError } from '../common/errors.js';
import { BoundedOutput } from './output.js';
import type { StreamWriter } from './writer.js';

const MAX_REASON_CHARS = 1000;

export function produce(
  makeStream: () => ReadableStream<string>,
  writer: StreamWriter,
  maxQueuedChars: number,
  waitUntil: ((promise: Promise<unknown>) => void) | null,
): ReadableStream<string> {
  const output = new BoundedOutput<string>(maxQueuedChars, (chunk) => chunk.length);
  const pumped = pump(makeStream, writer, output);
  waitUntil?.(pumped);
  return output.stream;
}

async function pump(makeStream: () => ReadableStream<string>, writer: StreamWriter, output: BoundedOutput<string>): Promise<void> {
  let reader: ReadableStreamDefaultReader<string> | undefined;
  try {
    reader = makeStream().getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (typeof value !== 'string') throw notText(value);
      writer.write(value);
      output.push(value);
    }
  } catch (error) {
    void reader?.cancel(error).catch(() => undefined);
    await writer.end(reasonOf(error));
    output.fail(error);
    return;
  }
  await writer.end();
  output.close();
}

function notText(value: unknown): ValidationError {
  const kind = value instanceof Uint8Array ? 'bytes (pipe the stream through a TextDecoderStream first)' : typeof value;
  return new ValidationError('INVALID_DATA', `A resumable stream carries strings; its source gave ${kind}`);
}

function reasonOf(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : `The source failed: ${String(error)}`;
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS)}…` : text;
}
