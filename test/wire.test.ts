import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSSE, memoryBackend, type SSE } from '../src/index.js';
import { type RunningServer, serve } from '../src/adapters/node.js';
import { TRICKY_PAYLOADS } from './helpers/payloads.js';
import { sleep, waitUntil } from './helpers/wait.js';

interface Received {
  type: string;
  data: string;
  lastEventId: string;
}

/** Opens the `eventsource` npm client (written by others: the judge) and records typed events. */
function listen(url: string, types: string[]) {
  const source = new EventSource(url);
  const received: Received[] = [];
  let ready = false;
  source.addEventListener('sse:ready', () => {
    ready = true;
  });
  for (const type of types) {
    source.addEventListener(type, (event) => received.push({ type, data: event.data, lastEventId: event.lastEventId }));
  }
  return { source, received, isReady: () => ready };
}

describe('wire format judged by the eventsource npm client over HTTP', () => {
  let sse: SSE;
  let server: RunningServer;

  beforeAll(async () => {
    sse = createSSE({ backend: memoryBackend(), retryMs: 50, maxDurationMs: 400 });
    server = await serve(sse.handler);
  });
  afterAll(() => server.close());

  it('delivers every tricky payload exactly (line breaks as LF), in order', async () => {
    const { source, received, isReady } = listen(`${server.url}/stream?channel=tricky`, ['tricky']);
    try {
      await waitUntil(isReady);
      const payloads = Object.values(TRICKY_PAYLOADS);
      for (const data of payloads) await sse.sendEvent('tricky', data, { channel: 'tricky' });
      await waitUntil(() => received.length >= payloads.length);
      expect(received.map((event) => event.data)).toEqual(payloads.map((data) => data.replace(/\r\n|\r/g, '\n')));
    } finally {
      source.close();
    }
  });

  it('sends non-string data as JSON and marks its id', async () => {
    const { source, received, isReady } = listen(`${server.url}/stream?channel=json`, ['doc']);
    try {
      await waitUntil(isReady);
      const value = { text: 'line1\nline2', n: 1.5, list: [true, null], emoji: '🌍' };
      const id = await sse.sendEvent('doc', value, { channel: 'json' });
      await waitUntil(() => received.length >= 1);
      expect(JSON.parse(received[0]!.data)).toEqual(value);
      expect(received[0]!.lastEventId).toBe(`${id};json`);
    } finally {
      source.close();
    }
  });

  it('resumes by itself with Last-Event-ID across server-ended streams: nothing lost, nothing twice', async () => {
    const { source, received, isReady } = listen(`${server.url}/stream?channel=resume`, ['n']);
    try {
      await waitUntil(isReady);
      const total = 150;
      for (let n = 0; n < total; n++) {
        await sse.sendEvent('n', String(n), { channel: 'resume' });
        await sleep(8); // paced: the events span several streams
      }
      await waitUntil(() => received.length >= total, 10_000);
      expect(received.map((event) => event.data)).toEqual(Array.from({ length: total }, (_, n) => String(n)));
    } finally {
      source.close();
    }
  }, 20_000);
});
