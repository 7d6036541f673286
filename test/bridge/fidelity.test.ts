import { Redis as IORedis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBridge, type Bridge } from '../../src/bridge/index.js';
import { deleteKeysWithPrefix, REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { post, request, TOKEN, upstashClient } from './support.js';

/** The Upstash REST protocol as documented (upstash.com/docs/redis/features/restapi), against real Redis. */

let bridge: Bridge;
let open: Bridge;
let direct: IORedis;
const prefix = uniquePrefix('bridge-fidelity');
const key = (name: string) => `${prefix}${name}`;

beforeAll(async () => {
  bridge = await createBridge({ token: TOKEN, redis: REDIS_URL });
  open = await createBridge({ token: TOKEN, redis: REDIS_URL, allowArbitraryScripts: true, allow: ['BITFIELD'] });
  direct = new IORedis(REDIS_URL);
});

afterEach(async () => {
  await deleteKeysWithPrefix(direct, prefix);
});

afterAll(async () => {
  await Promise.all([bridge.close(), open.close()]);
  direct.disconnect();
});

describe('integer replies', () => {
  it('keeps integers beyond 2^53 exact, as Redis sent them', async () => {
    const big = '9007199254740993';
    const single = await post(bridge.url, '/', ['INCRBY', key('big'), big]);
    expect(single.text).toBe(`{"result":${big}}`);
    expect(await direct.get(key('big'))).toBe(big);
    const pipeline = await post(
      bridge.url,
      '/pipeline',
      [
        ['INCRBY', key('big'), '1'],
        ['DECRBY', key('neg'), big],
      ],
      { 'Upstash-Encoding': 'base64' },
    );
    expect(pipeline.text).toBe('[{"result":9007199254740994},{"result":-9007199254740993}]');
    const exact = await post(bridge.url, '/multi-exec', [
      ['SET', key('max'), '9223372036854775806'],
      ['INCR', key('max')],
    ]);
    expect(exact.text).toBe('[{"result":"OK"},{"result":9223372036854775807}]');
    // Integers nested in an array reply (a Lua script cannot show this: Lua numbers are doubles).
    const nested = await post(open.url, '/', ['BITFIELD', key('bits'), 'INCRBY', 'i64', '0', big, 'GET', 'u8', '0']);
    expect(nested.text).toBe(`{"result":[${big},0]}`);
  });
});

describe('pipelines with a refused command', () => {
  it('answers 200, gives the refused entry its error and runs the others', async () => {
    const raw = await post(bridge.url, '/pipeline', [
      ['SET', key('a'), '1'],
      ['BLPOP', key('list'), '0'],
      ['FLUSHALL'],
      ['INCR', key('a')],
    ]);
    expect(raw.status).toBe(200);
    expect(raw.json).toEqual([
      { result: 'OK' },
      { error: expect.stringMatching(/^ERR BLPOP is not supported by the bridge: blocking/) },
      { error: expect.stringMatching(/^ERR FLUSHALL is not on the bridge's allowlist/) },
      { result: 2 },
    ]);
    expect(await direct.get(key('a'))).toBe('2');
  });

  it('refuses a transaction with a refused command as a whole, as Upstash does', async () => {
    const raw = await post(bridge.url, '/multi-exec', [['SET', key('half'), '1'], ['FLUSHALL']]);
    expect(raw.status).toBe(400);
    expect(raw.json.error).toMatch(/command 2: FLUSHALL is not on the bridge's allowlist.*nothing was executed/);
    expect(await direct.exists(key('half'))).toBe(0);
  });

  it('shows each refusal to @upstash/redis pipeline().exec({ keepErrors })', async () => {
    const redis = upstashClient(bridge.url);
    const results = await redis.pipeline().set(key('p'), 'v').eval('return 1', [], []).get(key('p')).exec({ keepErrors: true });
    expect(results.map((entry) => entry.result)).toEqual(['OK', undefined, 'v']);
    expect(results[1]?.error).toMatch(/EVAL of a script edge-sse does not send is refused/);
  });
});

describe('Upstash-Response-Format', () => {
  const resp2 = { 'Upstash-Response-Format': 'resp2' };

  it('answers RESP2 bytes as application/octet-stream', async () => {
    await direct.set(key('bin'), Buffer.from([0xff, 0x00, 0x0d, 0x0a]));
    const ok = await post(bridge.url, '/', ['SET', key('s'), 'bar'], resp2);
    expect([ok.status, ok.type, ok.text]).toEqual([200, 'application/octet-stream', '+OK\r\n']);
    expect((await post(bridge.url, '/', ['GET', key('s')], resp2)).text).toBe('$3\r\nbar\r\n');
    expect((await post(bridge.url, '/', ['INCRBY', key('n'), '9007199254740993'], resp2)).text).toBe(':9007199254740993\r\n');
    expect((await post(bridge.url, '/', ['GET', key('none')], resp2)).text).toBe('$-1\r\n');
    expect((await post(bridge.url, '/', ['PING'], resp2)).text).toBe('+PONG\r\n');
    expect((await post(bridge.url, '/', ['TYPE', key('s')], resp2)).text).toBe('+string\r\n');
    const binary = await fetch(`${bridge.url}/`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, ...resp2 },
      body: JSON.stringify(['GET', key('bin')]),
    });
    expect(Buffer.from(await binary.arrayBuffer())).toEqual(Buffer.from([0x24, 0x34, 0x0d, 0x0a, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]));
    await direct.rpush(key('l'), 'a', 'b');
    expect((await post(bridge.url, '/', ['LRANGE', key('l'), '0', '-1'], resp2)).text).toBe('*2\r\n$1\r\na\r\n$1\r\nb\r\n');
  });

  it('answers errors as RESP2 error replies with status 400', async () => {
    await direct.set(key('word'), 'abc');
    const error = await post(bridge.url, '/', ['INCR', key('word')], resp2);
    expect([error.status, error.type, error.text]).toEqual([
      400,
      'application/octet-stream',
      '-ERR value is not an integer or out of range\r\n',
    ]);
    const refused = await post(bridge.url, '/', ['FLUSHALL'], resp2);
    expect(refused.status).toBe(400);
    expect(refused.text).toMatch(/^-ERR FLUSHALL is not on the bridge's allowlist[^\r\n]*\r\n$/);
  });

  it('answers a pipeline as one RESP2 reply per command', async () => {
    const raw = await post(bridge.url, '/pipeline', [['SET', key('x'), '1'], ['INCR', key('x')], ['FLUSHALL']], resp2);
    expect(raw.status).toBe(200);
    expect(raw.text).toMatch(/^\+OK\r\n:2\r\n-ERR FLUSHALL is not on the bridge's allowlist[^\r\n]*\r\n$/);
  });

  it('keeps JSON for /multi-exec, which Upstash answers only in JSON', async () => {
    const raw = await post(bridge.url, '/multi-exec', [['PING']], resp2);
    expect([raw.type, raw.json]).toEqual(['application/json; charset=utf-8', [{ result: 'PONG' }]]);
  });

  it('answers 400 to unknown formats and to resp2 with base64', async () => {
    const unknown = await post(bridge.url, '/', ['PING'], { 'Upstash-Response-Format': 'xml' });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toMatch(/Upstash-Response-Format must be "json" or "resp2", got "xml"/);
    const both = await post(bridge.url, '/', ['PING'], { ...resp2, 'Upstash-Encoding': 'base64' });
    expect(both.status).toBe(400);
    expect(both.json.error).toMatch(/Upstash-Encoding: base64 cannot be combined with Upstash-Response-Format: resp2/);
    expect((await post(bridge.url, '/', ['PING'], { 'Upstash-Response-Format': 'JSON' })).json).toEqual({ result: 'PONG' });
  });
});

describe('path-style commands and ?_token=', () => {
  const auth = { Authorization: `Bearer ${TOKEN}` };

  it('runs GET /set/key/value and GET /get/key', async () => {
    expect((await request(bridge.url, `/set/${key('p')}/bar`, { headers: auth })).json).toEqual({ result: 'OK' });
    expect((await request(bridge.url, `/get/${key('p')}`, { headers: auth })).json).toEqual({ result: 'bar' });
    expect((await request(bridge.url, `/GET/${key('p')}`, { method: 'HEAD', headers: auth })).status).toBe(200);
    const spaced = await request(bridge.url, `/set/${encodeURIComponent(key('a/b c'))}/${encodeURIComponent('ü ✓/%')}`, { headers: auth });
    expect(spaced.json).toEqual({ result: 'OK' });
    expect(await direct.get(key('a/b c'))).toBe('ü ✓/%');
  });

  it('appends a POST body as the last argument, then the query parameters', async () => {
    const value = Buffer.from([0x00, 0xff, 0x7b, 0x0a]);
    const raw = await request(bridge.url, `/set/${key('body')}?EX=100`, { method: 'POST', headers: auth, body: value });
    expect(raw.json).toEqual({ result: 'OK' });
    expect(await direct.getBuffer(key('body'))).toEqual(value);
    expect(await direct.ttl(key('body'))).toBeGreaterThan(90);
    expect((await request(bridge.url, `/set/${key('body')}/v?NX`, { headers: auth })).json).toEqual({ result: null });
    expect((await request(bridge.url, `/incr/${key('count')}`, { method: 'POST', headers: auth })).json).toEqual({ result: 1 });
    expect((await request(bridge.url, `/publish/${key('chat')}/hello`, { method: 'PUT', headers: auth })).json).toEqual({ result: 0 });
  });

  it('applies the allowlist and scripts guard to path-style commands too', async () => {
    const flush = await request(bridge.url, '/flushall', { headers: auth });
    expect(flush.status).toBe(400);
    expect(flush.json.error).toMatch(/FLUSHALL is not on the bridge's allowlist/);
    const script = await request(bridge.url, '/eval/return%201/0', { headers: auth });
    expect(script.json.error).toMatch(/EVAL of a script edge-sse does not send is refused/);
  });

  it('takes the token from ?_token= as Upstash does', async () => {
    expect((await request(bridge.url, `/set/${key('t')}/v?_token=${TOKEN}`)).json).toEqual({ result: 'OK' });
    expect(await direct.get(key('t'))).toBe('v'); // _token is not an argument
    expect((await request(bridge.url, `/?_token=${TOKEN}`, { method: 'POST', body: '["PING"]' })).json).toEqual({ result: 'PONG' });
    const wrong = await request(bridge.url, `/get/${key('t')}?_token=nope`);
    expect(wrong.status).toBe(401);
  });

  it('answers 405 to other methods and 400 to a command-less GET', async () => {
    const remove = await request(bridge.url, `/get/${key('x')}`, { method: 'DELETE', headers: auth });
    expect(remove.status).toBe(405);
    expect(remove.headers.get('allow')).toBe('GET, HEAD, POST, PUT');
    const root = await request(bridge.url, '/', { headers: auth });
    expect(root.status).toBe(400);
    expect(root.json.error).toMatch(/No command/);
    const pipeline = await request(bridge.url, '/pipeline', { headers: auth });
    expect(pipeline.status).toBe(405);
    expect(pipeline.headers.get('allow')).toBe('POST, PUT');
  });

  it('refuses malformed percent-encoding with a reason', async () => {
    const raw = await request(bridge.url, '/get/%E0%A4%A', { headers: auth });
    expect(raw.status).toBe(400);
    expect(raw.json.error).toMatch(/Path segment 2 is not valid percent-encoding/);
  });

  it('refuses query parameters on the JSON endpoints, which take none', async () => {
    const raw = await post(bridge.url, '/?EX=10', ['SET', key('q'), 'v']);
    expect(raw.status).toBe(400);
    expect(raw.json.error).toMatch(/Query parameters other than _token apply to path-style commands only/);
  });
});

describe('errors nested in arrays', () => {
  it('writes an error inside an array reply as { error } in its place', async () => {
    const raw = await post(open.url, '/', ['EVAL', "return {1, redis.error_reply('ERR boom'), 'x'}", '0']);
    expect(raw.status).toBe(200);
    expect(raw.json).toEqual({ result: [1, { error: 'ERR boom' }, 'x'] });
    const base64 = await post(open.url, '/', ['EVAL', "return {redis.error_reply('ERR boom'), 'x'}", '0'], {
      'Upstash-Encoding': 'base64',
    });
    expect(base64.json).toEqual({ result: [{ error: 'ERR boom' }, Buffer.from('x').toString('base64')] });
    const redis = upstashClient(open.url);
    expect(await redis.eval("return {1, redis.error_reply('ERR boom')}", [], [])).toEqual([1, { error: 'ERR boom' }]);
    const resp2 = await post(open.url, '/', ['EVAL', "return {1, redis.error_reply('ERR boom')}", '0'], {
      'Upstash-Response-Format': 'resp2',
    });
    expect(resp2.text).toBe('*2\r\n:1\r\n-ERR boom\r\n');
  });
});
