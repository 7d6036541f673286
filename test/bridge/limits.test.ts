import { connect, type Socket } from 'node:net';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBridge, type Bridge } from '../../src/bridge/index.js';
import { REDIS_URL } from '../helpers/redis.js';
import { type OwnRedis, startOwnRedis } from '../helpers/redis-server.js';
import { connectionsBesides, post, TOKEN } from './support.js';

/** Slow or greedy clients meet explicit bounds, and are told why. */

let bridge: Bridge;

beforeAll(async () => {
  bridge = await createBridge({ token: TOKEN, redis: REDIS_URL, headersTimeoutMs: 800, requestTimeoutMs: 1500, idleTimeoutMs: 500 });
});

afterAll(async () => {
  await bridge.close();
});

interface Trickle {
  socket: Socket;
  /** What the bridge answered before it closed the socket. */
  closed: Promise<{ afterMs: number; answer: string }>;
  stop(): void;
}

/** Sends `text` one byte every `everyMs`, as a slowloris client does. */
function trickle(text: string, everyMs: number, rest = ''): Trickle {
  const socket = connect({ host: '127.0.0.1', port: bridge.port });
  const started = Date.now();
  let answer = '';
  socket.on('data', (chunk) => (answer += chunk));
  socket.on('error', () => undefined);
  socket.write(rest);
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < text.length && !socket.destroyed) socket.write(text[sent++]!);
  }, everyMs);
  const closed = new Promise<{ afterMs: number; answer: string }>((resolve) =>
    socket.once('close', () => {
      clearInterval(timer);
      resolve({ afterMs: Date.now() - started, answer });
    }),
  );
  return { socket, closed, stop: () => (clearInterval(timer), socket.destroy()) };
}

describe('timeouts', () => {
  it('cuts off a client that sends its headers a byte at a time (slowloris)', async () => {
    const head = `POST / HTTP/1.1\r\nHost: bridge\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 8\r\n\r\n`;
    const client = trickle(head, 100);
    const { afterMs, answer } = await client.closed;
    expect(afterMs).toBeLessThan(3000); // the whole head would take ~9 s at this pace
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('cuts off a client that sends its body a byte at a time', async () => {
    const head = `POST / HTTP/1.1\r\nHost: bridge\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n`;
    const client = trickle(JSON.stringify(['ECHO', 'x'.repeat(26)]), 100, head);
    const { afterMs, answer } = await client.closed;
    expect(afterMs).toBeLessThan(4000); // the whole body would take ~4 s at this pace, the timeout is 1.5 s
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('closes a keep-alive connection left idle', async () => {
    const socket = connect({ host: '127.0.0.1', port: bridge.port });
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk));
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    socket.write(`POST / HTTP/1.1\r\nHost: bridge\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 8\r\n\r\n["PING"]`);
    await expect.poll(() => answer).toMatch(/"result":"PONG"/);
    const answeredAt = Date.now();
    expect((await closed) - answeredAt).toBeLessThan(4000); // Node's default would keep it 5 s
  });

  it('keeps a subscription open longer than every request timeout', async () => {
    const aborter = new AbortController();
    const response = await fetch(`${bridge.url}/subscribe/limits-long`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}` },
      signal: aborter.signal,
    });
    const reader = response.body!.getReader();
    let text = '';
    const reading = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return 'ended';
        text += Buffer.from(value).toString();
      }
    })().catch(() => 'aborted');
    await expect.poll(() => text).toMatch(/subscribe,limits-long,1/);
    // Past requestTimeoutMs (1.5 s), which Node's own timers enforce: this one takes real time.
    const ended = await Promise.race([reading, new Promise((resolve) => setTimeout(() => resolve('open'), 2500))]);
    expect(ended).toBe('open');
    aborter.abort();
  });

  it('refuses inconsistent timeouts', async () => {
    await expect(createBridge({ token: TOKEN, headersTimeoutMs: 5000, requestTimeoutMs: 1000 })).rejects.toThrow(
      /headersTimeoutMs \(5000\) must not exceed requestTimeoutMs \(1000\)/,
    );
    await expect(createBridge({ token: TOKEN, idleTimeoutMs: -1 })).rejects.toThrow(/idleTimeoutMs must be a positive integer/);
  });
});

describe('transactions', () => {
  let server: OwnRedis;
  let direct: IORedis;

  beforeAll(async () => {
    server = await startOwnRedis();
    direct = new IORedis(server.url);
  });

  afterAll(async () => {
    direct.disconnect();
    await server.dispose();
  });

  it('answers 503 with a reason beyond maxTransactions', async () => {
    const capped = await createBridge({ token: TOKEN, redis: server.url, maxTransactions: 2 });
    const pid = Number(/process_id:(\d+)/.exec(await direct.info('server'))![1]);
    try {
      process.kill(pid, 'SIGSTOP'); // the two transactions stay in flight until SIGCONT
      const held = [post(capped.url, '/multi-exec', [['SET', 'tx', 'a']]), post(capped.url, '/multi-exec', [['GET', 'tx']])];
      await expect.poll(() => capped.stats().byPath.multiExec).toBe(2);
      const refused = await post(capped.url, '/multi-exec', [['PING']]);
      expect(refused.status).toBe(503);
      expect(refused.json.error).toMatch(
        /2 transactions are running, the most this bridge runs at once \(maxTransactions, --max-transactions\)/,
      );
      process.kill(pid, 'SIGCONT');
      expect((await Promise.all(held)).map((answer) => answer.json)).toEqual([[{ result: 'OK' }], [{ result: 'a' }]]);
      expect((await post(capped.url, '/multi-exec', [['PING']])).json).toEqual([{ result: 'PONG' }]);
    } finally {
      process.kill(pid, 'SIGCONT');
      await capped.close();
    }
  });

  it('runs concurrent transactions without a Redis connection each', async () => {
    const own = await createBridge({ token: TOKEN, redis: server.url });
    try {
      const answers = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          post(own.url, '/multi-exec', [
            ['SET', `t${i}`, `v${i}`],
            ['GET', `t${i}`],
          ]),
        ),
      );
      expect(answers.map((answer) => answer.json)).toEqual(answers.map((_, i) => [{ result: 'OK' }, { result: `v${i}` }]));
      expect(await connectionsBesides(direct)).toBeLessThanOrEqual(1);
    } finally {
      await own.close();
    }
  });
});
