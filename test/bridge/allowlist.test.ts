import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBridge } from '../../src/bridge/index.js';
import { deleteKeysWithPrefix, REDIS_URL, uniquePrefix } from '../helpers/redis.js';
import { post, TOKEN } from './support.js';

/** What an operator can open beyond the default allowlist, and what never opens. */

let direct: IORedis;
const prefix = uniquePrefix('bridge-allow');

beforeAll(() => {
  direct = new IORedis(REDIS_URL);
});

afterAll(async () => {
  await deleteKeysWithPrefix(direct, prefix);
  direct.disconnect();
});

describe('allowlist options', () => {
  it('adds commands with allow and opens everything stateless with allowAll', async () => {
    const withObject = await createBridge({ token: TOKEN, redis: REDIS_URL, allow: ['object'] });
    const open = await createBridge({ token: TOKEN, redis: REDIS_URL, allowAll: true });
    try {
      await direct.set(`${prefix}o`, 'v');
      expect((await post(withObject.url, '/', ['OBJECT', 'ENCODING', `${prefix}o`])).json).toEqual({ result: 'embstr' });
      expect((await post(open.url, '/', ['STRLEN', `${prefix}o`])).json).toEqual({ result: 1 });
      expect((await post(open.url, '/', ['MEMORY', 'USAGE', `${prefix}o`])).status).toBe(200);
      expect((await post(open.url, '/', ['EVAL', 'return ARGV[1]', '0', 'any script'])).json).toEqual({ result: 'any script' });
      expect((await post(open.url, '/', ['BLPOP', `${prefix}l`, '0'])).status).toBe(400);
      expect((await post(open.url, '/', ['SCRIPT', 'DEBUG', 'YES'])).status).toBe(400);
    } finally {
      await withObject.close();
      await open.close();
    }
  });

  it('refuses to allow commands that cannot work over HTTP, and bad options', async () => {
    await expect(createBridge({ token: TOKEN, allow: ['BLPOP'] })).rejects.toThrow(/BLPOP cannot be allowed/);
    await expect(createBridge({ token: '' })).rejects.toThrow(/non-empty token/);
    await expect(createBridge({ token: TOKEN, redis: 'http://localhost' })).rejects.toThrow(/redis:\/\//);
    await expect(createBridge({ token: TOKEN, maxSubscriptions: 0 })).rejects.toThrow(/maxSubscriptions must be a positive integer, got 0/);
    await expect(createBridge({ token: TOKEN, maxTransactions: 1.5 })).rejects.toThrow(/maxTransactions must be a positive integer/);
    await expect(createBridge({ token: TOKEN, allowedScripts: [''] })).rejects.toThrow(/allowedScripts must hold script bodies/);
  });
});
