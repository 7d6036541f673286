/**
 * The memory backend's own promises beyond the contract: expired channels are freed, a burst
 * reaches every reader that keeps up (only a stalled one is dropped), and live events of several
 * channels arrive in id order.
 */
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { type CloseReason, createSSE, memoryBackend } from '../src/index.js';
import { type RunningServer, serve } from '../src/adapters/node.js';
import { SSEReader, streamRequest } from './helpers/sse.js';
import { waitUntil } from './helpers/wait.js';

const retention = { maxLength: 10, ttlSeconds: 1 };
const event = (channel: string, data = 'x') => ({ channel, type: 'n', data, json: false });

describe('memoryBackend: expired channels', () => {
  it('frees 20,000 expired channels on later use, without a timer', async () => {
    let now = 1_000_000;
    const backend = memoryBackend({ now: () => now });
    for (let n = 0; n < 20_000; n++) await backend.append([event(`room.${n}`)], retention);
    expect(backend.stats().channels).toBe(20_000);
    now += 1000; // every one of them is past its ttlSeconds
    await backend.append([event('fresh')], retention);
    expect(backend.stats().channels).toBe(1);
    expect(await backend.tail(['room.0', 'fresh'], 1)).toEqual([
      { head: '0-0', events: [] },
      { head: expect.stringMatching(/^1001000-0$/), events: [expect.objectContaining({ data: 'x' })] },
    ]);
  });

  it('keeps a channel whose events refresh its expiry', async () => {
    let now = 1_000_000;
    const backend = memoryBackend({ now: () => now });
    await backend.append([event('kept'), event('dropped')], retention);
    now += 600;
    await backend.append([event('kept', 'again')], retention);
    now += 600; // "dropped" expired 200 ms ago; "kept" expires in 400 ms
    await backend.tail([], 0);
    expect(backend.stats().channels).toBe(1);
    const [kept] = await backend.read([{ channel: 'kept', after: '0-0' }], 10);
    expect(kept!.events.map((e) => e.data)).toEqual(['x', 'again']);
  });
});

describe('memoryBackend: live order across channels', () => {
  it('events published alternately on two channels in one batch arrive in id order', async () => {
    let clock = 1;
    const sse = createSSE({ backend: memoryBackend({ now: () => clock++ }) });
    const reader = new SSEReader(await sse.handler(streamRequest('?channel=a&channel=b')));
    await reader.waitForReady();
    const ids = await sse.sendEvents(Array.from({ length: 20 }, (_, n) => ({ type: 'n', data: n, channel: n % 2 ? 'b' : 'a' })));
    await reader.waitForMessages(20);
    expect(reader.messages.map((m) => Number(m.data))).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(ids.map((id) => id.split('-')[0]).map(Number)).toEqual([...ids.map((id) => Number(id.split('-')[0]))].sort((x, y) => x - y));
    await reader.cancel();
  });
});

const running: RunningServer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((server) => server.close()));
});

/** A client that reads the first bytes, then stops reading: its socket and the server's buffer fill. */
function stalledClient(url: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/?channel=burst`, (res) => {
      res.once('data', () => {
        res.pause();
        resolve(res);
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const BURST_EVENTS = 10_000;
const PAYLOAD = 'p'.repeat(1024); // 10,000 × ~1 KiB: a 10 MB burst

describe.each([
  ['one sendEvents call', 'batch'],
  ['10,000 sendEvent calls in a row', 'loop'],
] as const)('memoryBackend: a 10 MB burst (%s)', (_, shape) => {
  it('reaches every reader that keeps up; only the stalled one is closed', async () => {
    const reasons: CloseReason[] = [];
    const sse = createSSE({
      backend: memoryBackend(),
      maxLength: shape === 'batch' ? BURST_EVENTS : undefined,
      onDisconnect: (_, reason) => reasons.push(reason),
    });
    const server = await serve(sse.handler, { hostname: '127.0.0.1', onError: () => {} });
    running.push(server);
    const fast = await Promise.all([1, 2, 3].map(async () => new SSEReader(await fetch(`${server.url}/?channel=burst`))));
    await Promise.all(fast.map((reader) => reader.waitForReady()));
    const stalled = await stalledClient(server.url);
    const stalledClosed = new Promise((resolve) => stalled.socket.once('close', resolve));

    const events = Array.from({ length: BURST_EVENTS }, (_, n) => ({ type: 'n', data: `${n} ${PAYLOAD}`, channel: 'burst' }));
    if (shape === 'batch') await sse.sendEvents(events);
    else for (const { type, data, channel } of events) await sse.sendEvent(type, data, { channel });

    await Promise.all(fast.map((reader) => reader.waitForMessages(BURST_EVENTS, 15_000)));
    for (const reader of fast) {
      expect(reader.messages.map((m) => Number(m.data.split(' ')[0]))).toEqual(events.map((_, n) => n));
    }
    await waitUntil(() => reasons.includes('slow-client'));
    expect(reasons).toEqual(['slow-client']);
    stalled.resume(); // drain what the kernel holds: the connection then ends
    await stalledClosed;
    await Promise.all(fast.map((reader) => reader.cancel()));
  }, 30_000);
});
