import { createHash, randomUUID } from 'node:crypto';
import { Redis as IORedis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EDGE_SSE_SCRIPTS } from '../../src/backends/redis-streams/scripts.js';
import { createBridge, type Bridge } from '../../src/bridge/index.js';
import { deleteKeysWithPrefix, REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { post, TOKEN, upstashClient } from './support.js';

/**
 * The real @upstash/redis client through the bridge, family by family (strings, hashes, lists,
 * sets, sorted sets, streams, scripts, pipelines, transactions, pub/sub), against the shared
 * Redis under a prefix of its own.
 */

/** Unique per run, so Redis has not cached it: @upstash/redis's createScript then falls back from EVALSHA to EVAL. */
const ECHO_SCRIPT = `-- bridge test ${randomUUID()}\nreturn {KEYS[1], ARGV[1]}`;

let bridge: Bridge;
let direct: IORedis;
const prefix = uniquePrefix('bridge-client');
const key = (name: string) => `${prefix}${name}`;

beforeAll(async () => {
  bridge = await createBridge({ token: TOKEN, redis: REDIS_URL, heartbeatMs: 100, allowedScripts: [ECHO_SCRIPT] });
  direct = new IORedis(REDIS_URL);
});

afterEach(async () => {
  await deleteKeysWithPrefix(direct, prefix);
});

afterAll(async () => {
  await bridge.close();
  direct.disconnect();
});

const client = (options?: Parameters<typeof upstashClient>[1]) => upstashClient(bridge.url, options);

describe('command families through @upstash/redis', () => {
  it('strings', async () => {
    const redis = client();
    const value = { name: 'édge', tags: ['a', 'b'], nested: { n: 1.5, ok: true, none: null } };
    expect(await redis.set(key('json'), value)).toBe('OK');
    expect(await redis.get(key('json'))).toEqual(value);
    expect(await redis.set(key('once'), 'first', { nx: true, ex: 60 })).toBe('OK');
    expect(await redis.set(key('once'), 'second', { nx: true, ex: 60 })).toBeNull();
    expect(await redis.ttl(key('once'))).toBeGreaterThan(50);
    expect(await redis.incrby(key('n'), 40)).toBe(40);
    expect(await redis.incrbyfloat(key('n'), 1.5)).toBe(41.5);
    expect(await redis.append(key('s'), 'hello')).toBe(5);
    expect(await redis.getrange(key('s'), 1, 3)).toBe('ell');
    expect(await redis.mset({ [key('m1')]: 'a', [key('m2')]: 2 })).toBe('OK');
    expect(await redis.mget(key('m1'), key('m2'), key('missing'))).toEqual(['a', 2, null]);
    expect(await redis.getdel(key('m1'))).toBe('a');
    expect(await redis.strlen(key('s'))).toBe(5);
  });

  it('hashes', async () => {
    const redis = client();
    expect(await redis.hset(key('h'), { field: 'value', count: 3 })).toBe(2);
    expect(await redis.hgetall(key('h'))).toEqual({ field: 'value', count: 3 });
    expect(await redis.hincrby(key('h'), 'count', 2)).toBe(5);
    expect(await redis.hget(key('h'), 'field')).toBe('value');
    expect(await redis.hmget(key('h'), 'field', 'none')).toEqual({ field: 'value', none: null });
    expect((await redis.hkeys(key('h'))).sort()).toEqual(['count', 'field']);
    expect(await redis.hexists(key('h'), 'field')).toBe(1);
    expect(await redis.hdel(key('h'), 'field')).toBe(1);
    expect(await redis.hlen(key('h'))).toBe(1);
  });

  it('lists', async () => {
    const redis = client();
    expect(await redis.rpush(key('l'), 'b', 'c')).toBe(2);
    expect(await redis.lpush(key('l'), 'a')).toBe(3);
    expect(await redis.lrange(key('l'), 0, -1)).toEqual(['a', 'b', 'c']);
    expect(await redis.lindex(key('l'), 1)).toBe('b');
    expect(await redis.lpos(key('l'), 'c')).toBe(2);
    expect(await redis.lset(key('l'), 1, 'B')).toBe('OK');
    expect(await redis.lmove(key('l'), key('l2'), 'left', 'right')).toBe('a');
    expect(await redis.rpop(key('l'))).toBe('c');
    expect(await redis.llen(key('l'))).toBe(1);
    expect(await redis.ltrim(key('l2'), 0, 0)).toBe('OK');
  });

  it('sets', async () => {
    const redis = client();
    expect(await redis.sadd(key('s1'), 'a', 'b', 'c')).toBe(3);
    expect(await redis.sadd(key('s2'), 'b', 'c', 'd')).toBe(3);
    expect((await redis.smembers(key('s1'))).sort()).toEqual(['a', 'b', 'c']);
    expect(await redis.sismember(key('s1'), 'a')).toBe(1);
    expect(await redis.smismember(key('s1'), ['a', 'z'])).toEqual([1, 0]);
    expect((await redis.sinter(key('s1'), key('s2'))).sort()).toEqual(['b', 'c']);
    expect((await redis.sunion(key('s1'), key('s2'))).sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(await redis.sdiff(key('s1'), key('s2'))).toEqual(['a']);
    expect(await redis.srem(key('s1'), 'a')).toBe(1);
    expect(await redis.scard(key('s1'))).toBe(2);
  });

  it('sorted sets', async () => {
    const redis = client();
    expect(await redis.zadd(key('z'), { score: 2.5, member: 'b' }, { score: 1, member: 'a' }, { score: 3, member: 'c' })).toBe(3);
    expect(await redis.zrange(key('z'), 0, -1, { withScores: true })).toEqual(['a', 1, 'b', 2.5, 'c', 3]);
    expect(await redis.zrange(key('z'), 2, 3, { byScore: true })).toEqual(['b', 'c']);
    expect(await redis.zrange(key('z'), 0, 0, { rev: true })).toEqual(['c']);
    expect(await redis.zscore(key('z'), 'b')).toBe(2.5);
    expect(await redis.zincrby(key('z'), 10, 'a')).toBe(11);
    expect(await redis.zrank(key('z'), 'a')).toBe(2);
    expect(await redis.zcard(key('z'))).toBe(3);
    expect(await redis.zpopmin(key('z'), 1)).toEqual(['b', 2.5]);
    expect(await redis.zrem(key('z'), 'c')).toBe(1);
  });

  it('streams, with consumer groups, without blocking', async () => {
    const redis = client();
    const first = await redis.xadd(key('s'), '*', { type: 'greeting', data: 'hello' });
    const second = await redis.xadd(key('s'), '*', { type: 'greeting', data: 'wörld' });
    expect(await redis.xlen(key('s'))).toBe(2);
    expect(await redis.xrange(key('s'), '-', '+')).toEqual({
      [first]: { type: 'greeting', data: 'hello' },
      [second]: { type: 'greeting', data: 'wörld' },
    });
    expect(await redis.xread(key('s'), first)).toEqual([[key('s'), [[second, ['type', 'greeting', 'data', 'wörld']]]]]);
    expect(await redis.xread(key('s'), second)).toBeNull();
    expect(await redis.xgroup(key('s'), { type: 'CREATE', group: 'g', id: '0' })).toBe('OK');
    const read = (await redis.xreadgroup('g', 'c1', key('s'), '>', { count: 1 })) as [string, [string, string[]][]][];
    expect(read[0]![1][0]![0]).toBe(first);
    expect(await redis.xack(key('s'), 'g', first)).toBe(1);
    expect(await redis.xdel(key('s'), second)).toBe(1);
  });

  it("scripts: edge-sse's and the operator's listed ones run, any other is refused", async () => {
    const redis = client();
    const script = redis.createScript<string[]>(ECHO_SCRIPT);
    expect(await script.exec([key('k')], ['w'])).toEqual([key('k'), 'w']); // EVALSHA, NOSCRIPT, then EVAL
    expect(await redis.eval(ECHO_SCRIPT, [key('k')], ['v'])).toEqual([key('k'), 'v']);
    expect(await redis.evalsha(createHash('sha1').update(ECHO_SCRIPT).digest('hex'), [key('k')], ['x'])).toEqual([key('k'), 'x']);
    for (const body of EDGE_SSE_SCRIPTS) expect(await redis.scriptLoad(body)).toBe(createHash('sha1').update(body).digest('hex'));
    await expect(redis.eval('return {KEYS[1], ARGV[1], 1}', [key('k')], ['v'])).rejects.toThrow(
      /EVAL of a script edge-sse does not send is refused/,
    );
  });

  it('pipeline(), in order, with each command error separately', async () => {
    const redis = client();
    await redis.set(key('text'), 'not a number');
    const results = await redis
      .pipeline()
      .set(key('p'), 'v')
      .incr(key('text'))
      .get(key('p'))
      .hset(key('ph'), { a: 1 })
      .exec({ keepErrors: true });
    expect(results.map((entry) => entry.result)).toEqual(['OK', undefined, 'v', 1]);
    expect(results[1]?.error).toMatch(/not an integer/);
    await expect(redis.pipeline().incr(key('text')).exec()).rejects.toThrow(/ERR value is not an integer/);
  });

  it('auto-pipelined concurrent commands, in fewer HTTP requests', async () => {
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

  it('multi() as a transaction', async () => {
    const redis = client();
    expect(await redis.multi().set(key('m'), 'x').append(key('m'), 'yz').get(key('m')).incr(key('n')).exec()).toEqual(['OK', 3, 'xyz', 1]);
  });

  it('subscribe and psubscribe, including newlines and unicode', async () => {
    const redis = client();
    const channel = key('news/eu');
    const subscriber = redis.subscribe<unknown>([channel]);
    const patterns = redis.psubscribe<unknown>([key('room:*')]);
    const confirmed = [
      new Promise((resolve) => subscriber.on('subscribe', resolve)),
      new Promise((resolve) => patterns.on('psubscribe', resolve)),
    ];
    expect(await Promise.all(confirmed)).toEqual([1, 1]);
    const received: unknown[] = [];
    const allReceived = new Promise<void>((resolve) =>
      subscriber.on('message', ({ message }) => {
        received.push(message);
        if (received.length === 4) resolve();
      }),
    );
    const pattern = new Promise((resolve) => patterns.on('pmessage', resolve));
    await redis.publish(channel, { text: 'line one\nline two ✓ 🎉' });
    await direct.publish(channel, 'raw\nmulti-line\r\npayload, with commas');
    await direct.publish(channel, '{\n  "pretty": [1, 2]\n}');
    await redis.publish(channel, 'plain');
    await redis.publish(key('room:7'), { hi: 'there' });
    await allReceived;
    expect(received).toEqual([{ text: 'line one\nline two ✓ 🎉' }, 'raw\nmulti-line\r\npayload, with commas', { pretty: [1, 2] }, 'plain']);
    expect(await pattern).toEqual({ pattern: key('room:*'), channel: key('room:7'), message: { hi: 'there' } });
    await subscriber.unsubscribe();
    await patterns.unsubscribe();
    await expect.poll(async () => (await direct.pubsub('NUMSUB', channel))[1]).toBe(0);
  });
});

describe('replies through @upstash/redis', () => {
  it('rejects with the Redis message on an error reply', async () => {
    const redis = client();
    await redis.set(key('word'), 'abc');
    await expect(redis.incr(key('word'))).rejects.toThrow('ERR value is not an integer or out of range');
    const raw = await post(bridge.url, '/', ['INCR', key('word')]);
    expect(raw).toMatchObject({ status: 400, json: { error: 'ERR value is not an integer or out of range' } });
  });

  it('rejects a wrong token', async () => {
    const redis = upstashClient(bridge.url, { token: 'wrong' });
    await expect(redis.get(key('x'))).rejects.toThrow(/Unauthorized/);
    for (const authorization of ['Bearer wrong', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`, '']) {
      const raw = await post(bridge.url, '/', ['PING'], { Authorization: authorization });
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
    const single = await post(bridge.url, '/', ['GET', key('bin')], { 'Upstash-Encoding': 'base64' });
    expect(Buffer.from(single.json.result, 'base64')).toEqual(bytes);
    const pipeline = await post(
      bridge.url,
      '/pipeline',
      [
        ['GET', key('bin')],
        ['SET', key('n'), 5],
        ['INCRBY', key('n'), 2],
        ['GET', 'x-none'],
      ],
      {
        'Upstash-Encoding': 'base64',
      },
    );
    expect(pipeline.json).toEqual([{ result: bytes.toString('base64') }, { result: 'OK' }, { result: 7 }, { result: null }]);
    expect((await post(bridge.url, '/', ['ECHO', 'hi ✓'])).json).toEqual({ result: 'hi ✓' });
  });
});
