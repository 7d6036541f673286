import { createHash } from 'node:crypto';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upstashBackend } from '../../src/backends/upstash/index.js';
import { EDGE_SSE_SCRIPTS } from '../../src/backends/redis-streams/scripts.js';
import { createBridge, type Bridge } from '../../src/bridge/index.js';
import { type OwnRedis, startOwnRedis } from '../helpers/redis-server.js';
import { post, TOKEN, upstashClient } from './support.js';

/**
 * Scripts can do anything to any key and can block Redis, so by default the bridge runs only
 * the scripts edge-sse itself sends. These tests run on a redis-server of their own: an unsafe
 * script that got through must not reach the Redis other suites share.
 */

let server: OwnRedis;
let direct: IORedis;
let bridge: Bridge;

beforeAll(async () => {
  server = await startOwnRedis();
  direct = new IORedis(server.url);
  bridge = await createBridge({ token: TOKEN, redis: server.url, commandTimeoutMs: 2000 });
});

afterAll(async () => {
  await bridge.close();
  direct.disconnect();
  await server.dispose();
});

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');
const RETENTION = { maxLength: 100, ttlSeconds: 60 };

describe('scripts by default', () => {
  it('refuses a script that would flush the database, and runs nothing', async () => {
    await direct.set('survivor', 'still here');
    const raw = await post(bridge.url, '/', ['EVAL', "return redis.call('FLUSHALL')", '0']);
    expect(raw.status).toBe(400);
    expect(raw.json.error).toMatch(/EVAL of a script edge-sse does not send is refused.*--allow-scripts/);
    expect(await direct.get('survivor')).toBe('still here');
  });

  it('refuses a busy loop before it reaches Redis', async () => {
    const started = Date.now();
    const raw = await post(bridge.url, '/', ['EVAL', 'while true do end', '0']);
    expect(raw.status).toBe(400);
    expect(raw.json.error).toMatch(/refused/);
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await post(bridge.url, '/', ['PING'])).json).toEqual({ result: 'PONG' });
  });

  it('refuses @upstash/redis eval, evalsha and script load of other scripts with a clear error', async () => {
    const redis = upstashClient(bridge.url);
    await expect(redis.eval("return redis.call('DEL', KEYS[1])", ['k'], [])).rejects.toThrow(
      /EVAL of a script edge-sse does not send is refused by the bridge.*allowArbitraryScripts/,
    );
    const unknownSha = sha1('return 1');
    await expect(redis.evalsha(unknownSha, [], [])).rejects.toThrow(/EVALSHA of a script edge-sse does not send is refused/);
    await expect(redis.scriptLoad('return 1')).rejects.toThrow(/SCRIPT LOAD of a script edge-sse does not send is refused/);
    await expect(redis.scriptFlush()).rejects.toThrow(/SCRIPT is not on the bridge's allowlist/);
    expect(await direct.script('EXISTS', unknownSha)).toEqual([0]);
  });

  it('refuses the other ways to run code in Redis, and will not allow them by name', async () => {
    expect(
      (await post(bridge.url, '/', ['FUNCTION', 'LOAD', "#!lua name=evil\nredis.register_function('f', function() return 1 end)"])).json
        .error,
    ).toMatch(/FUNCTION is refused by the bridge: functions are scripts.*--allow-scripts/);
    expect((await post(bridge.url, '/', ['FCALL', 'f', '0'])).json.error).toMatch(/FCALL is refused/);
    expect((await post(bridge.url, '/', ['EVAL_RO', 'return 1', '0'])).json.error).toMatch(/EVAL_RO of a script edge-sse does not send/);
    expect((await post(bridge.url, '/', ['SCRIPT', 'DEBUG', 'YES'])).json.error).toMatch(/SCRIPT DEBUG is not supported/);
    for (const name of ['EVAL', 'evalsha', 'FUNCTION', 'FCALL']) {
      await expect(createBridge({ token: TOKEN, redis: server.url, allow: [name] })).rejects.toThrow(
        new RegExp(`${name.toUpperCase()} cannot be allowed by name: .*--allow-scripts`),
      );
    }
    // SCRIPT on the allowlist grants its housekeeping (FLUSH, KILL), still not unknown bodies.
    const named = await createBridge({ token: TOKEN, redis: server.url, allow: ['SCRIPT'] });
    try {
      expect((await post(named.url, '/', ['SCRIPT', 'LOAD', 'return 1'])).json.error).toMatch(
        /SCRIPT LOAD of a script edge-sse does not send/,
      );
      expect((await post(named.url, '/', ['SCRIPT', 'KILL'])).json.error).toMatch(/NOTBUSY/);
    } finally {
      await named.close();
    }
  });

  it("runs edge-sse's own scripts: upstashBackend publishes through the bridge, also after SCRIPT FLUSH", async () => {
    const backend = upstashBackend({ url: bridge.url, token: TOKEN, prefix: 'scripts:' });
    const shas = EDGE_SSE_SCRIPTS.map(sha1);
    const first = await backend.append([{ channel: 'c', type: 'greeting', data: 'one', json: false }], RETENTION);
    expect(await direct.script('EXISTS', ...shas)).toEqual(shas.map(() => 1));
    await direct.script('FLUSH');
    expect(await direct.script('EXISTS', ...shas)).toEqual(shas.map(() => 0));
    const second = await backend.append([{ channel: 'c', type: 'greeting', data: 'two', json: false }], RETENTION);
    expect(await direct.xrange('scripts:{c}', '-', '+')).toEqual([
      [first[0], ['type', 'greeting', 'data', 'one']],
      [second[0], ['type', 'greeting', 'data', 'two']],
    ]);
    await backend.close();
  });

  it("loads and checks edge-sse's own scripts with SCRIPT LOAD and SCRIPT EXISTS", async () => {
    const redis = upstashClient(bridge.url);
    for (const script of EDGE_SSE_SCRIPTS) expect(await redis.scriptLoad(script)).toBe(sha1(script));
    expect(await redis.scriptExists(...EDGE_SSE_SCRIPTS.map(sha1))).toEqual(EDGE_SSE_SCRIPTS.map(() => 1));
  });
});

describe('allowArbitraryScripts', () => {
  it('runs any script once the operator opts in', async () => {
    const open = await createBridge({ token: TOKEN, redis: server.url, allowArbitraryScripts: true });
    try {
      const redis = upstashClient(open.url);
      expect(await redis.eval('return ARGV[1] .. KEYS[1]', ['k'], ['v'])).toBe('vk');
      const sha = await redis.scriptLoad('return 7');
      expect(await redis.evalsha(sha, [], [])).toBe(7);
    } finally {
      await open.close();
    }
  });
});
