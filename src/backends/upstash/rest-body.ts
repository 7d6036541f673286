/**
 * Reading what an HTTP endpoint sends back without trusting its size: a hostile or broken endpoint
 * (a proxy, a captive portal) must not make us buffer without bound.
 */
import { readTextUpTo } from '../../common/body-limit.js';
import type { BackendError } from '../../common/errors.js';

/** Reads the body as text, failing once it passes `maxBytes`. */
export async function readCapped(response: Response, maxBytes: number, tooLarge: () => BackendError): Promise<string> {
  const text = await readTextUpTo(response, maxBytes);
  if (text === undefined) throw tooLarge();
  return text;
}

export interface LineGuard {
  maxLineBytes: number;
  tooLong: () => BackendError;
  /** Whether a line is the one that ends the wait (a subscription's confirmation). */
  isAwaited: (line: string) => boolean;
  /** Called once, when that line has arrived. */
  onAwaited: () => void;
}

/**
 * Passes a line-based stream (SSE) through, failing it when a line grows past `maxLineBytes`
 * across chunks (its reader buffers a line until it ends; a line inside one chunk is no bigger
 * than the chunk, in memory anyway), and telling when the awaited line has come.
 */
export function guardLines(body: ReadableStream<Uint8Array>, guard: LineGuard): ReadableStream<Uint8Array> {
  let open = 0;
  let awaiting = true;
  let partial = '';
  const decoder = new TextDecoder();
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        const newline = chunk.indexOf(10);
        if (newline < 0) open += chunk.byteLength;
        else {
          if (open + newline > guard.maxLineBytes) return controller.error(guard.tooLong());
          open = chunk.byteLength - chunk.lastIndexOf(10) - 1;
        }
        if (open > guard.maxLineBytes) return controller.error(guard.tooLong());
        if (awaiting) {
          const lines = (partial + decoder.decode(chunk, { stream: true })).split('\n');
          partial = lines.pop() ?? '';
          if (lines.some(guard.isAwaited)) {
            awaiting = false;
            partial = '';
            guard.onAwaited();
          }
        }
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
