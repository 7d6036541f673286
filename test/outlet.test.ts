/**
 * The Response body as a web-stream reader sees it (every adapter but edge-sse/node's direct path:
 * @hono/node-server, Bun, Deno, Workers, Next.js): what one read gets, and what the body is.
 */
import { createParser } from 'eventsource-parser';
import { describe, expect, it } from 'vitest';
import { createSSE, memoryBackend } from '../src/index.ts';
import { streamRequest } from './helpers/sse.ts';
import { waitUntil } from './helpers/wait.ts';

const decoder = new TextDecoder();

function parse(text: string): { event: string | undefined; data: string }[] {
  const events: { event: string | undefined; data: string }[] = [];
  const parser = createParser({ onEvent: ({ event, data }) => events.push({ event, data }) });
  parser.feed(text);
  return events;
}

describe('the body stream, read through a reader', () => {
  it('hands what was written since the last read over as one chunk: one read, not one per frame', async () => {
    const sse = createSSE({ backend: memoryBackend() });
    const aborter = new AbortController();
    const response = await sse.handler(streamRequest('?channel=burst', {}, aborter.signal));
    const reader = response.body!.getReader();
    try {
      // The retry hint and sse:ready were both written before anything read.
      const opening = decoder.decode((await reader.read()).value);
      expect(opening).toMatch(/^retry: \d+\n/);
      expect(parse(opening).map(({ event }) => event)).toEqual(['sse:ready']);

      await sse.sendEvents(['a', 'b', 'c'].map((data) => ({ type: 'update', data, channel: 'burst' })));
      await waitUntil(() => sse.handler.stats().eventsDelivered === 3);
      const burst = decoder.decode((await reader.read()).value);
      expect(parse(burst)).toEqual([
        { event: 'update', data: 'a' },
        { event: 'update', data: 'b' },
        { event: 'update', data: 'c' },
      ]);

      // A reader already waiting gets the next frame at once, on its own.
      const pending = reader.read();
      await sse.sendEvent('update', 'd', { channel: 'burst' });
      expect(parse(decoder.decode((await pending).value))).toEqual([{ event: 'update', data: 'd' }]);
    } finally {
      aborter.abort();
      await reader.cancel();
    }
  });

  it('is a plain ReadableStream: Node gives each instance of a subclass hidden classes of its own (~0.7 KiB)', async () => {
    const sse = createSSE({ backend: memoryBackend() });
    const aborter = new AbortController();
    const response = await sse.handler(streamRequest('?channel=plain', {}, aborter.signal));
    expect(Object.getPrototypeOf(response.body)).toBe(ReadableStream.prototype);
    aborter.abort();
    await response.body!.cancel();
  });
});
