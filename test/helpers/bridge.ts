import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { type UpstashBackendOptions, upstashBackend } from '../../src/backends/upstash/index.js';
import { type Bridge, type BridgeOptions, createBridge } from '../../src/bridge/index.js';
import type { Backend } from '../../src/index.js';
import { REDIS_URL, deleteKeysWithPrefix, uniquePrefix } from './redis.js';

/**
 * A bridge over the shared Redis for one test file, and key prefixes of its own that are deleted
 * afterwards. Call at the top level of a test file; `options` go to `createBridge` (limits,
 * timeouts, allowlist).
 */
export function useBridge(scope: string, options: Omit<BridgeOptions, 'token'> = {}) {
  const token = `${scope}-token`;
  const prefixes: string[] = [];
  let bridge: Bridge | undefined;

  beforeAll(async () => {
    bridge = await createBridge({ ...options, token });
  });
  afterAll(async () => {
    await bridge?.close();
    const redis = new IORedis(REDIS_URL);
    for (const prefix of prefixes) await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
  });

  function prefix(): string {
    const fresh = uniquePrefix(scope);
    prefixes.push(fresh);
    return fresh;
  }

  return {
    token,
    get bridge(): Bridge {
      if (!bridge) throw new Error('useBridge: the bridge starts in beforeAll');
      return bridge;
    },
    prefix,
    /** An Upstash backend through this bridge, under a fresh prefix. */
    upstash(options: Partial<UpstashBackendOptions> = {}): Backend {
      return upstashBackend({ url: this.bridge.url, token, prefix: prefix(), ...options });
    },
  };
}
