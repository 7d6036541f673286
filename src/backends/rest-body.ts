/**
 * Reading what an HTTP endpoint sends back without trusting its size: a hostile or broken endpoint
 * (a proxy, a captive portal) must not make us buffer without bound.
 */
import { BackendError } from '../errors.js';

/** Reads the body as text, failing once it passes `maxBytes`; what was read is dropped at once. */
export async function readCapped(response: Response, maxBytes: number, tooLarge: () => BackendError): Promise<string> {
  const declared = Number(response.headers.get('content-length'));
  if (declared > maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (!response.body) return '';
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parts: string[] = [];
  let bytes = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    if (bytes > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    parts.push(decoder.decode(value, { stream: true }));
  }
  parts.push(decoder.decode());
  return parts.join('');
}

/**
 * Passes a line-based stream (SSE) through, failing it when a line grows past `maxLineBytes`
 * across chunks: its reader buffers a line until it ends. (A line inside one chunk is no bigger
 * than the chunk, which is in memory anyway.)
 */
export function capLines(
  body: ReadableStream<Uint8Array>,
  { maxLineBytes, tooLong, onFirstChunk }: { maxLineBytes: number; tooLong: () => BackendError; onFirstChunk: () => void },
): ReadableStream<Uint8Array> {
  let open = 0;
  let first = true;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (first) onFirstChunk();
        first = false;
        const newline = chunk.indexOf(10);
        if (newline < 0) open += chunk.byteLength;
        else {
          if (open + newline > maxLineBytes) return controller.error(tooLong());
          open = chunk.byteLength - chunk.lastIndexOf(10) - 1;
        }
        if (open > maxLineBytes) return controller.error(tooLong());
        controller.enqueue(chunk);
      },
    }),
  );
}

/** The first bytes of a body, quoted, to show in an error. */
export function preview(text: string, chars = 120): string {
  const head = JSON.stringify(text.slice(0, chars));
  return text.length > chars ? `${head.slice(0, -1)}…"` : head;
}
