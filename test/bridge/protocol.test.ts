import { Redis as IORedis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBridge, type Bridge } from '../../src/bridge/index.js';
import { singleLine } from '../../src/bridge/subscribe.js';
import { deleteKeysWithPrefix, REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { post, request, TOKEN } from './support.js';

/** The raw HTTP side of the bridge: bodies, refusals, limits, SSE framing, counters. */

let bridge: Bridge;
let direct: IORedis;
const prefix = uniquePrefix('bridge-protocol');
const key = (name: string) => `${prefix}${name}`;

beforeAll(async () => {
  bridge = await createBridge({ token: TOKEN, redis: REDIS_URL, heartbeatMs: 100 });
  direct = new IORedis(REDIS_URL);
});

afterEach(async () => {
  await deleteKeysWithPrefix(direct, prefix);
});

afterAll(async () => {
  await bridge.close();
  direct.disconnect();
});

describe('requests', () => {
  it('answers unknown commands, methods and command-less requests with JSON and a reason', async () => {
    const unknown = await post(bridge.url, '/nope', ['PING']);
    expect(unknown).toMatchObject({ status: 400, type: expect.stringMatching(/application\/json/) });
    expect(unknown.json.error).toMatch(/NOPE is not on the bridge's allowlist/);
    const remove = await request(bridge.url, '/', { method: 'DELETE', headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(remove.status).toBe(405);
    expect(remove.json).toEqual({ error: expect.stringMatching(/use GET, HEAD, POST, PUT/) });
    const root = await request(bridge.url, '/', { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(root.status).toBe(400);
    expect(root.json.error).toMatch(/No command/);
  });

  it('rejects malformed bodies with a reason', async () => {
    const cases: [string, unknown, RegExp][] = [
      ['/', '{not json', /not valid JSON/],
      ['/', { command: 'GET' }, /non-empty JSON array/],
      ['/', [], /non-empty JSON array/],
      ['/', ['GET', null], /argument 2 must be a string, number or boolean, got null/],
      ['/', ['SET', 'k', { a: 1 }], /argument 3 .* got object/],
      ['/pipeline', ['GET', 'k'], /Command 1 must be a non-empty JSON array/],
      ['/pipeline', [], /non-empty JSON array of commands/],
      ['/multi-exec', [['GET', 'k'], 'x'], /Command 2 must be/],
    ];
    for (const [path, body, reason] of cases) {
      const raw = await post(bridge.url, path, body);
      expect(raw.status, `${path} ${JSON.stringify(body)}`).toBe(400);
      expect(raw.json.error).toMatch(reason);
    }
  });

  it('refuses blocking and connection-state commands with a clear 400', async () => {
    const refused: [string[], RegExp][] = [
      [['BLPOP', key('l'), '1'], /BLPOP is not supported.*blocking/],
      [['brpop', key('l'), '1'], /BRPOP is not supported/],
      [['XREAD', 'COUNT', '1', 'BLOCK', '0', 'STREAMS', key('s'), '$'], /XREAD with BLOCK/],
      [['XREADGROUP', 'GROUP', 'g', 'c', 'BLOCK', '10', 'STREAMS', key('s'), '>'], /XREADGROUP with BLOCK/],
      [['SUBSCRIBE', 'ch'], /SUBSCRIBE is not supported.*connection state/],
      [['MULTI'], /MULTI is not supported/],
      [['SELECT', '1'], /SELECT is not supported/],
      [['CLIENT', 'SETNAME', 'x'], /CLIENT is not supported/],
      [['FLUSHALL'], /FLUSHALL is not on the bridge's allowlist/],
      [['CONFIG', 'GET', 'maxmemory'], /CONFIG is not on the bridge's allowlist/],
    ];
    for (const [command, reason] of refused) {
      const raw = await post(bridge.url, '/', command);
      expect(raw.status, command.join(' ')).toBe(400);
      expect(raw.json.error).toMatch(reason);
    }
    // A stream named "BLOCK" is only a key, not the option.
    expect((await post(bridge.url, '/', ['XREAD', 'COUNT', '1', 'STREAMS', 'BLOCK', '0'])).json).toEqual({ result: null });
  });

  it('answers 413 to a body over the limit', async () => {
    const big = JSON.stringify(['SET', key('big'), 'x'.repeat(1024 * 1024)]);
    const raw = await post(bridge.url, '/', big);
    expect(raw.status).toBe(413);
    expect(raw.json.error).toMatch(/larger than 1048576 bytes/);
    expect(await direct.exists(key('big'))).toBe(0);
    expect((await post(bridge.url, '/', ['PING'])).json).toEqual({ result: 'PONG' });
  });

  it('stringifies numbers and booleans in commands', async () => {
    expect((await post(bridge.url, '/', ['SET', key('num'), 41])).json).toEqual({ result: 'OK' });
    expect((await post(bridge.url, '/', ['INCRBY', key('num'), 1])).json).toEqual({ result: 42 });
    expect((await post(bridge.url, '/', ['SET', key('bool'), true])).json).toEqual({ result: 'OK' });
    expect(await direct.get(key('bool'))).toBe('true');
  });

  it('counts requests by path', async () => {
    const own = await createBridge({ token: TOKEN, redis: REDIS_URL });
    try {
      await post(own.url, '/', ['PING']);
      await post(own.url, '/pipeline', [['PING'], ['PING']]);
      await post(own.url, '/multi-exec', [['PING']]);
      await request(own.url, '/ping', { headers: { Authorization: `Bearer ${TOKEN}` } });
      await post(own.url, '/', ['PING'], { Authorization: 'Bearer bad' });
      await post(own.url, '/', ['BLPOP', 'x', '0']);
      await request(own.url, '/', { method: 'DELETE' });
      expect(own.stats()).toEqual({
        requests: 7,
        byPath: { command: 4, pipeline: 1, multiExec: 1, subscribe: 0, other: 1 },
        commands: 5,
        subscriptions: 0,
        openSubscriptions: 0,
        pushedMessages: 0,
      });
    } finally {
      await own.close();
    }
  });
});

describe('transactions', () => {
  it('refuses a transaction that contains a refused command, and applies nothing', async () => {
    const raw = await post(bridge.url, '/multi-exec', [
      ['SET', key('half'), '1'],
      ['BLPOP', key('l'), '0'],
    ]);
    expect(raw.status).toBe(400);
    expect(raw.json.error).toMatch(/command 2: BLPOP is not supported.*nothing was executed/);
    expect(await direct.exists(key('half'))).toBe(0);
  });

  it('answers an aborted transaction with an error and applies nothing', async () => {
    const raw = await post(bridge.url, '/multi-exec', [
      ['SET', key('t'), '1'],
      ['SET', key('t')],
    ]);
    expect(raw.status).toBe(400);
    expect(raw.json.error).toMatch(/^EXECABORT .*wrong number of arguments for 'set' command/);
    expect(await direct.exists(key('t'))).toBe(0);
    const runtimeError = await post(bridge.url, '/multi-exec', [
      ['SET', key('t'), 'a'],
      ['INCR', key('t')],
      ['GET', key('t')],
    ]);
    expect(runtimeError.status).toBe(200);
    expect(runtimeError.json).toEqual([{ result: 'OK' }, { error: 'ERR value is not an integer or out of range' }, { result: 'a' }]);
  });

  it('keeps concurrent transactions apart, also from concurrent commands on the same connection', async () => {
    const shared = key('shared');
    const transactions = Array.from({ length: 20 }, (_, i) =>
      post(bridge.url, '/multi-exec', [
        ['SET', shared, `tx${i}`],
        ['APPEND', shared, '-done'],
        ['GET', shared],
      ]),
    );
    const interleaved = Array.from({ length: 20 }, () => post(bridge.url, '/', ['SET', shared, 'between']));
    const results = await Promise.all(transactions);
    await Promise.all(interleaved);
    results.forEach((raw, i) => {
      expect(raw.status).toBe(200);
      expect(raw.json).toEqual([{ result: 'OK' }, { result: `tx${i}-done`.length }, { result: `tx${i}-done` }]);
    });
  });
});

describe('subscription streams', () => {
  it('frames the stream as server-sent events and counts what it pushed', async () => {
    const channel = key('raw');
    const controller = new AbortController();
    const response = await fetch(`${bridge.url}/subscribe/${channel}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, Accept: 'text/event-stream' },
      body: '[]',
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const readUntil = async (needle: string) => {
      while (!text.includes(needle)) {
        const chunk = await reader.read();
        if (chunk.done) throw new Error(`The stream ended before "${needle}": ${text}`);
        text += chunk.value;
      }
    };
    await readUntil('\n\n');
    expect(text).toBe(`data: subscribe,${channel},1\n\n`);
    const before = bridge.stats();
    await direct.publish(channel, 'a\nb');
    await readUntil('message');
    await readUntil(': ping');
    expect(text).toContain(`data: message,${channel},"a\\nb"\n\n`);
    expect(bridge.stats().pushedMessages - before.pushedMessages).toBe(1);
    controller.abort();
    await expect.poll(async () => (await direct.pubsub('NUMSUB', channel))[1]).toBe(0);
  });

  it('requires the token for subscriptions too, and takes it from ?_token=', async () => {
    const raw = await post(bridge.url, `/subscribe/${key('c')}`, [], { Authorization: 'Bearer nope' });
    expect(raw).toMatchObject({ status: 401, json: { error: expect.stringMatching(/Unauthorized/) } });
    const controller = new AbortController();
    const response = await fetch(`${bridge.url}/subscribe/${key('c')}?_token=${TOKEN}`, { signal: controller.signal });
    expect(response.status).toBe(200);
    controller.abort();
  });

  it('keeps payloads on one line in a form JSON.parse turns back into the same value', () => {
    for (const payload of ['plain', 'a\nb', 'x\r\ny', '{\n"a": "b\\nc"\n}', '[1,\n2]', '"already\\nquoted"']) {
      const line = singleLine(payload);
      expect(line).not.toMatch(/[\r\n]/);
      let expected: unknown;
      try {
        expected = JSON.parse(payload);
      } catch {
        expected = payload;
      }
      let actual: unknown;
      try {
        actual = JSON.parse(line);
      } catch {
        actual = line;
      }
      expect(actual).toEqual(expected);
    }
  });
});
