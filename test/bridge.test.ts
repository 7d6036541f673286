import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from '@upstash/redis';
import { Redis as IORedis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBridge, type Bridge } from '../src/bridge/index.js';
import { parseBridgeArgs } from '../src/bridge/args.js';
import { singleLine } from '../src/bridge/subscribe.js';
import { deleteKeysWithPrefix, REDIS_URL, uniquePrefix } from './helpers/redis.js';
import { type OwnRedis, startOwnRedis } from './helpers/redis-server.js';

const TOKEN = 'test-token-which-is-secret';

let bridge: Bridge;
let direct: IORedis;
const prefix = uniquePrefix('bridge');

beforeAll(async () => {
  bridge = await createBridge({ token: TOKEN, redis: REDIS_URL, heartbeatMs: 100 });
  direct = new IORedis(REDIS_URL);
});

afterAll(async () => {
  await bridge.close();
  direct.disconnect();
});

afterEach(async () => {
  await deleteKeysWithPrefix(direct, prefix);
});

function key(name: string): string {
  return `${prefix}${name}`;
}

function client(options: { autoPipeline?: boolean; responseEncoding?: false; automaticDeserialization?: boolean } = {}): Redis {
  return new Redis({
    url: bridge.url,
    token: TOKEN,
    enableAutoPipelining: options.autoPipeline ?? false,
    responseEncoding: options.responseEncoding,
    automaticDeserialization: options.automaticDeserialization,
    enableTelemetry: false,
    retry: false,
  });
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}, base = bridge.url) {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, type: response.headers.get('content-type'), json: (await response.json()) as any };
}

describe('the @upstash/redis client through the bridge', () => {
  it('runs auto-pipelined concurrent commands in fewer HTTP requests', async () => {
    const redis = client({ autoPipeline: true });
    const before = bridge.stats();
    const results = await Promise.all([
      redis.set(key('a'), 'one'),
      redis.set(key('b'), 2),
      redis.incr(key('counter')),
      redis.get(key('a')),
      redis.ping(),
    ]);
    expect(results).toEqual(['OK', 'OK', 1, 'one', 'PONG']);
    const after = bridge.stats();
    expect(after.commands - before.commands).toBe(5);
    expect(after.byPath.pipeline - before.byPath.pipeline).toBeLessThan(5);
    expect(after.byPath.command - before.byPath.command).toBe(0);
  });

  it('runs pipeline() in order and reports each command error separately', async () => {
    const redis = client();
    await redis.set(key('text'), 'not a number');
    const results = await redis
      .pipeline()
      .set(key('p'), 'v')
      .incr(key('text'))
      .get(key('p'))
      .exec({ keepErrors: true });
    expect(results.map((entry) => entry.result)).toEqual(['OK', undefined, 'v']);
    expect(results[1]?.error).toMatch(/not an integer/);
    await expect(redis.pipeline().incr(key('text')).exec()).rejects.toThrow(/ERR value is not an integer/);
  });

  it('runs multi() as a transaction', async () => {
    const redis = client();
    const results = await redis.multi().set(key('m'), 'x').append(key('m'), 'yz').get(key('m')).incr(key('n')).exec();
    expect(results).toEqual(['OK', 3, 'xyz', 1]);
  });

  it('stores strings, JSON values and hashes', async () => {
    const redis = client();
    const value = { name: 'édge', tags: ['a', 'b'], nested: { n: 1.5, ok: true, none: null } };
    await redis.set(key('json'), value);
    expect(await redis.get(key('json'))).toEqual(value);
    expect(await redis.set(key('once'), 'first', { nx: true, ex: 60 })).toBe('OK');
    expect(await redis.set(key('once'), 'second', { nx: true, ex: 60 })).toBeNull();
    expect(await redis.ttl(key('once'))).toBeGreaterThan(50);
    expect(await redis.hset(key('h'), { field: 'value', count: 3 })).toBe(2);
    expect(await redis.hgetall(key('h'))).toEqual({ field: 'value', count: 3 });
    expect(await redis.hincrby(key('h'), 'count', 2)).toBe(5);
    expect(await redis.exists(key('h'), key('missing'))).toBe(1);
    expect(await redis.get(key('missing'))).toBeNull();
    await redis.zadd(key('z'), { score: 2.5, member: 'b' }, { score: 1, member: 'a' });
    expect(await redis.zrange(key('z'), 0, -1, { withScores: true })).toEqual(['a', 1, 'b', 2.5]);
    expect(await redis.zscore(key('z'), 'b')).toBe(2.5);
  });

  it('appends to and reads streams without blocking', async () => {
    const redis = client();
    const first = await redis.xadd(key('s'), '*', { type: 'greeting', data: 'hello' });
    const second = await redis.xadd(key('s'), '*', { type: 'greeting', data: 'wörld' });
    expect(await redis.xlen(key('s'))).toBe(2);
    expect(await redis.xrange(key('s'), '-', '+')).toEqual({
      [first]: { type: 'greeting', data: 'hello' },
      [second]: { type: 'greeting', data: 'wörld' },
    });
    const read = (await redis.xread(key('s'), first)) as [string, [string, string[]][]][];
    expect(read).toEqual([[key('s'), [[second, ['type', 'greeting', 'data', 'wörld']]]]]);
    expect(await redis.xread(key('s'), second)).toBeNull();
  });

  it('rejects with the Redis message on an error reply', async () => {
    const redis = client();
    await redis.set(key('word'), 'abc');
    await expect(redis.incr(key('word'))).rejects.toThrow('ERR value is not an integer or out of range');
    const raw = await post('/', ['INCR', key('word')]);
    expect(raw).toMatchObject({ status: 400, json: { error: 'ERR value is not an integer or out of range' } });
  });

  it('rejects a wrong token', async () => {
    const redis = new Redis({ url: bridge.url, token: 'wrong', enableTelemetry: false, retry: false });
    await expect(redis.get(key('x'))).rejects.toThrow(/Unauthorized/);
    for (const authorization of ['Bearer wrong', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`, '']) {
      const raw = await post('/', ['PING'], { Authorization: authorization });
      expect(raw.status).toBe(401);
      expect(raw.type).toMatch(/application\/json/);
      expect(raw.json.error).toMatch(/Unauthorized/);
    }
  });

  it('round-trips unicode and binary-ish strings with base64 encoding on and off', async () => {
    const tricky = 'héllo wörld ✓ 🎉 \u0001\t"quoted" \\ OK';
    const base64Client = client({ automaticDeserialization: false });
    const plainClient = client({ responseEncoding: false, automaticDeserialization: false });
    await base64Client.set(key('u'), tricky);
    await base64Client.set(key('ok'), 'OK');
    expect(await base64Client.get(key('u'))).toBe(tricky);
    expect(await plainClient.get(key('u'))).toBe(tricky);
    // "OK" nested in an array is decoded by the client like any other string.
    expect(await base64Client.mget(key('ok'), key('u'), key('none'))).toEqual(['OK', tricky, null]);
    expect(await plainClient.mget(key('ok'), key('u'), key('none'))).toEqual(['OK', tricky, null]);
    expect(await base64Client.get(key('ok'))).toBe('OK');
  });

  it('returns the raw bytes of binary values in base64 and numbers as numbers', async () => {
    const bytes = Buffer.from([0xff, 0x00, 0x80, 0x0a, 0xc3]);
    await direct.set(key('bin'), bytes);
    const single = await post('/', ['GET', key('bin')], { 'Upstash-Encoding': 'base64' });
    expect(Buffer.from(single.json.result, 'base64')).toEqual(bytes);
    const pipeline = await post('/pipeline', [['GET', key('bin')], ['SET', key('n'), 5], ['INCRBY', key('n'), 2], ['GET', 'x-none']], {
      'Upstash-Encoding': 'base64',
    });
    expect(pipeline.json).toEqual([{ result: bytes.toString('base64') }, { result: 'OK' }, { result: 7 }, { result: null }]);
    const plain = await post('/', ['ECHO', 'hi ✓']);
    expect(plain.json).toEqual({ result: 'hi ✓' });
  });
});

describe('subscriptions', () => {
  function waitFor<T>(subscriber: { on(type: any, listener: (data: any) => void): void }, type: string): Promise<T> {
    return new Promise((resolve) => subscriber.on(type, resolve));
  }

  it('delivers published messages, including newlines and unicode', async () => {
    const redis = client();
    const channel = key('news/eu');
    const subscriber = redis.subscribe<unknown>([channel]);
    expect(await waitFor(subscriber, 'subscribe')).toBe(1);
    const received: unknown[] = [];
    const allReceived = new Promise<void>((resolve) =>
      subscriber.on('message', ({ message }) => {
        received.push(message);
        if (received.length === 4) resolve();
      }),
    );
    await redis.publish(channel, { text: 'line one\nline two ✓ 🎉' });
    await direct.publish(channel, 'raw\nmulti-line\r\npayload, with commas');
    await direct.publish(channel, '{\n  "pretty": [1, 2]\n}');
    await redis.publish(channel, 'plain');
    await allReceived;
    expect(received).toEqual([{ text: 'line one\nline two ✓ 🎉' }, 'raw\nmulti-line\r\npayload, with commas', { pretty: [1, 2] }, 'plain']);
    expect(bridge.stats().openSubscriptions).toBeGreaterThanOrEqual(1);
    await subscriber.unsubscribe();
    await expect.poll(async () => (await direct.pubsub('NUMSUB', channel))[1]).toBe(0);
  });

  it('delivers pattern messages to psubscribe', async () => {
    const redis = client();
    const subscriber = redis.psubscribe<unknown>([key('room:*')]);
    expect(await waitFor(subscriber, 'psubscribe')).toBe(1);
    const message = waitFor(subscriber, 'pmessage');
    await redis.publish(key('room:7'), { hi: 'there' });
    expect(await message).toEqual({ pattern: key('room:*'), channel: key('room:7'), message: { hi: 'there' } });
    await subscriber.unsubscribe();
  });

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

  it('requires the token for subscriptions too', async () => {
    const raw = await post(`/subscribe/${key('c')}`, [], { Authorization: 'Bearer nope' });
    expect(raw).toMatchObject({ status: 401, json: { error: expect.stringMatching(/Unauthorized/) } });
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

describe('raw protocol', () => {
  it('answers unknown paths and methods with JSON', async () => {
    const notFound = await post('/nope', ['PING']);
    expect(notFound).toMatchObject({ status: 404, type: expect.stringMatching(/application\/json/) });
    expect(notFound.json.error).toMatch(/Not found/);
    const response = await fetch(`${bridge.url}/`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(response.status).toBe(405);
    expect(await response.json()).toEqual({ error: expect.stringMatching(/use POST/) });
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
      const raw = await post(path, body);
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
      const raw = await post('/', command);
      expect(raw.status, command.join(' ')).toBe(400);
      expect(raw.json.error).toMatch(reason);
    }
    // A stream named "BLOCK" is only a key, not the option.
    expect((await post('/', ['XREAD', 'COUNT', '1', 'STREAMS', 'BLOCK', '0'])).json).toEqual({ result: null });
  });

  it('refuses a whole pipeline or transaction that contains a refused command', async () => {
    for (const path of ['/pipeline', '/multi-exec']) {
      const raw = await post(path, [['SET', key('half'), '1'], ['BLPOP', key('l'), '0']]);
      expect(raw.status).toBe(400);
      expect(raw.json.error).toMatch(/command 2: BLPOP is not supported.*nothing was executed/);
    }
    expect(await direct.exists(key('half'))).toBe(0);
  });

  it('answers 413 to a body over the limit', async () => {
    const big = JSON.stringify(['SET', key('big'), 'x'.repeat(1024 * 1024)]);
    const raw = await post('/', big);
    expect(raw.status).toBe(413);
    expect(raw.json.error).toMatch(/larger than 1048576 bytes/);
    expect(await direct.exists(key('big'))).toBe(0);
    expect((await post('/', ['PING'])).json).toEqual({ result: 'PONG' });
  });

  it('stringifies numbers and booleans in commands', async () => {
    expect((await post('/', ['SET', key('num'), 41])).json).toEqual({ result: 'OK' });
    expect((await post('/', ['INCRBY', key('num'), 1])).json).toEqual({ result: 42 });
    expect((await post('/', ['SET', key('bool'), true])).json).toEqual({ result: 'OK' });
    expect(await direct.get(key('bool'))).toBe('true');
  });

  it('answers an aborted transaction with an error and applies nothing', async () => {
    const raw = await post('/multi-exec', [['SET', key('t'), '1'], ['SET', key('t')]]);
    expect(raw.status).toBe(400);
    expect(raw.json.error).toMatch(/^EXECABORT .*wrong number of arguments for 'set' command/);
    expect(await direct.exists(key('t'))).toBe(0);
    const runtimeError = await post('/multi-exec', [['SET', key('t'), 'a'], ['INCR', key('t')], ['GET', key('t')]]);
    expect(runtimeError.status).toBe(200);
    expect(runtimeError.json).toEqual([{ result: 'OK' }, { error: 'ERR value is not an integer or out of range' }, { result: 'a' }]);
  });

  it('keeps concurrent transactions apart', async () => {
    const shared = key('shared');
    const transactions = Array.from({ length: 20 }, (_, i) =>
      post('/multi-exec', [['SET', shared, `tx${i}`], ['APPEND', shared, '-done'], ['GET', shared]]),
    );
    const results = await Promise.all(transactions);
    results.forEach((raw, i) => {
      expect(raw.status).toBe(200);
      expect(raw.json).toEqual([{ result: 'OK' }, { result: `tx${i}-done`.length }, { result: `tx${i}-done` }]);
    });
  });

  it('counts requests by path', async () => {
    const own = await createBridge({ token: TOKEN, redis: REDIS_URL });
    try {
      await post('/', ['PING'], {}, own.url);
      await post('/pipeline', [['PING'], ['PING']], {}, own.url);
      await post('/multi-exec', [['PING']], {}, own.url);
      await post('/missing', [], {}, own.url);
      await post('/', ['PING'], { Authorization: 'Bearer bad' }, own.url);
      await post('/', ['BLPOP', 'x', '0'], {}, own.url);
      expect(own.stats()).toEqual({
        requests: 6,
        byPath: { command: 3, pipeline: 1, multiExec: 1, subscribe: 0, other: 1 },
        commands: 4,
        subscriptions: 0,
        openSubscriptions: 0,
        pushedMessages: 0,
      });
    } finally {
      await own.close();
    }
  });
});

describe('allowlist options', () => {
  it('adds commands with allow and opens everything stateless with allowAll', async () => {
    const withEcho = await createBridge({ token: TOKEN, redis: REDIS_URL, allow: ['object'] });
    const open = await createBridge({ token: TOKEN, redis: REDIS_URL, allowAll: true });
    try {
      await direct.set(key('o'), 'v');
      expect((await post('/', ['OBJECT', 'ENCODING', key('o')], {}, withEcho.url)).json).toEqual({ result: 'embstr' });
      expect((await post('/', ['STRLEN', key('o')], {}, open.url)).json).toEqual({ result: 1 });
      expect((await post('/', ['MEMORY', 'USAGE', key('o')], {}, open.url)).status).toBe(200);
      expect((await post('/', ['BLPOP', key('l'), '0'], {}, open.url)).status).toBe(400);
    } finally {
      await withEcho.close();
      await open.close();
    }
  });

  it('refuses to allow commands that cannot work over HTTP', async () => {
    await expect(createBridge({ token: TOKEN, allow: ['BLPOP'] })).rejects.toThrow(/BLPOP cannot be allowed/);
    await expect(createBridge({ token: '' })).rejects.toThrow(/non-empty token/);
    await expect(createBridge({ token: TOKEN, redis: 'http://localhost' })).rejects.toThrow(/redis:\/\//);
  });
});

describe('when Redis goes away', () => {
  let server: OwnRedis | undefined;

  afterEach(async () => {
    await server?.dispose();
  });

  it('answers 502 quickly and recovers without a restart', async () => {
    server = await startOwnRedis();
    const { port } = server;
    const own = await createBridge({ token: TOKEN, redis: server.url });
    try {
      expect((await post('/', ['SET', 'k', 'v'], {}, own.url)).json).toEqual({ result: 'OK' });
      const stream = await fetch(`${own.url}/subscribe/ch`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` }, body: '[]' });
      const streamText = stream.text();

      await server.kill();
      expect(await streamText).toBe('data: subscribe,ch,1\n\n'); // the stream ends with Redis

      for (const [path, body] of [['/', ['GET', 'k']], ['/pipeline', [['GET', 'k']]], ['/multi-exec', [['GET', 'k']]]] as const) {
        const started = Date.now();
        const raw = await post(path, body, {}, own.url);
        expect(Date.now() - started).toBeLessThan(1500);
        expect(raw.status).toBe(502);
        expect(raw.json.error).toMatch(`Redis is unreachable at redis://127.0.0.1:${port}`);
      }
      const subscribeDown = await post('/subscribe/ch', [], {}, own.url);
      expect(subscribeDown.status).toBe(502);

      await server.start();
      await expect.poll(async () => (await post('/', ['SET', 'k', 'back'], {}, own.url)).json, { timeout: 5000 }).toEqual({ result: 'OK' });
      expect((await post('/multi-exec', [['GET', 'k']], {}, own.url)).json).toEqual([{ result: 'back' }]);
    } finally {
      await own.close();
    }
  });
});

describe('edge-sse-bridge CLI', () => {
  function runCli(args: string[], env: Record<string, string> = {}): ChildProcess {
    const environment = { ...process.env, ...env };
    delete environment.BRIDGE_TOKEN;
    Object.assign(environment, env);
    return spawn(process.execPath, ['--import', 'tsx', 'src/bridge/cli.ts', ...args], { env: environment, stdio: 'pipe' });
  }

  async function output(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const [code] = (await once(child, 'exit')) as [number | null];
    return { code, stdout, stderr };
  }

  it('prints its URL and serves', async () => {
    const child = runCli(['--port', '0', '--redis', REDIS_URL, '--allow', 'OBJECT,MEMORY'], { BRIDGE_TOKEN: 'cli-token' });
    try {
      let stdout = '';
      child.stdout!.on('data', (chunk) => (stdout += chunk));
      await expect.poll(() => stdout, { timeout: 10_000 }).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
      const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)![1]!;
      const redis = new Redis({ url, token: 'cli-token', enableTelemetry: false, retry: false });
      expect(await redis.ping()).toBe('PONG');
      expect((await post('/', ['MEMORY', 'USAGE', 'nothing'], { Authorization: 'Bearer cli-token' }, url)).json).toEqual({ result: null });
    } finally {
      child.kill('SIGTERM');
    }
    expect((await once(child, 'exit'))[0]).toBe(0);
  });

  it('exits with a clear message on a missing token or a bad flag', async () => {
    const missing = await output(runCli(['--port', '0']));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/A token is required: pass --token <secret> or set BRIDGE_TOKEN/);
    const unknown = await output(runCli(['--token', 't', '--bogus']));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/Unknown option '--bogus'/);
    const badPort = await output(runCli(['--token', 't', '--port', 'eighty']));
    expect(badPort.stderr).toMatch(/--port must be an integer/);
  });

  it('parses flags and environment into bridge options', () => {
    expect(parseBridgeArgs(['--allow', 'EVAL, evalsha', '--allow', 'OBJECT', '--allow-all'], { BRIDGE_TOKEN: 's', REDIS_URL: 'redis://r:1' })).toEqual({
      help: false,
      options: { token: 's', port: 8079, host: '127.0.0.1', redis: 'redis://r:1', allow: ['EVAL', 'evalsha', 'OBJECT'], allowAll: true },
    });
    expect(parseBridgeArgs(['--help'], {})).toEqual({ help: true });
  });
});
