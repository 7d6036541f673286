/**
 * A Redis URL may hold a password: the messages of the TCP backend and of the bridge name the
 * server without it (both redact with backends/redis/connect.ts).
 */
import { describe, expect, it } from 'vitest';
import { createBridge } from '../src/bridge/index.js';
import { redisBackend } from '../src/backends/redis/index.js';
import { BackendError } from '../src/index.js';
import { post, TOKEN } from './bridge/support.js';
import { freePort } from './helpers/redis-server.js';

describe('a Redis URL with a password, where nothing answers', () => {
  it('the TCP backend fails with BACKEND_UNAVAILABLE naming the URL with *** for the password', async () => {
    const port = await freePort();
    const backend = redisBackend({ url: `redis://app:s3cret@127.0.0.1:${port}` });
    try {
      const failure = await backend.tail(['x'], 1).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(BackendError);
      expect((failure as BackendError).code).toBe('BACKEND_UNAVAILABLE');
      expect((failure as BackendError).message).toContain(`Redis is unreachable at redis://app:***@127.0.0.1:${port}: `);
      expect((failure as BackendError).message).not.toContain('s3cret');
    } finally {
      await backend.close();
    }
  });

  it('the bridge answers 502 naming the URL with *** for the password', async () => {
    const port = await freePort();
    const bridge = await createBridge({ token: TOKEN, redis: `redis://app:s3cret@127.0.0.1:${port}`, redisTimeoutMs: 200 });
    try {
      const raw = await post(bridge.url, '/', ['GET', 'k']);
      expect(raw.status).toBe(502);
      expect(raw.json.error).toContain(`Redis is unreachable at redis://app:***@127.0.0.1:${port}: `);
      expect(JSON.stringify(raw.json)).not.toContain('s3cret');
    } finally {
      await bridge.close();
    }
  });
});
