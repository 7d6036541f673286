import { afterEach, describe, expect, it } from 'vitest';
import { createBridge } from '../../src/bridge/index.js';
import { type OwnRedis, startOwnRedis } from '../helpers/redis-server.js';
import { post, TOKEN } from './support.js';

describe('when Redis goes away', () => {
  let server: OwnRedis | undefined;

  afterEach(async () => {
    await server?.dispose();
  });

  it('answers 502 quickly, ends every stream, and recovers without a restart', async () => {
    server = await startOwnRedis();
    const { port } = server;
    const own = await createBridge({ token: TOKEN, redis: server.url });
    try {
      expect((await post(own.url, '/', ['SET', 'k', 'v'])).json).toEqual({ result: 'OK' });
      const open = (path: string) =>
        fetch(`${own.url}${path}`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` }, body: '[]' });
      const streams = await Promise.all([open('/subscribe/ch'), open('/subscribe/ch'), open('/psubscribe/c*')]);
      const texts = streams.map((stream) => stream.text());

      await server.kill();
      // Every stream on the shared subscriber ends with Redis, so clients resubscribe.
      expect(await Promise.all(texts)).toEqual(['data: subscribe,ch,1\n\n', 'data: subscribe,ch,1\n\n', 'data: psubscribe,c*,1\n\n']);
      await expect.poll(() => own.stats().openSubscriptions).toBe(0);

      for (const [path, body] of [
        ['/', ['GET', 'k']],
        ['/pipeline', [['GET', 'k']]],
        ['/multi-exec', [['GET', 'k']]],
      ] as const) {
        const started = Date.now();
        const raw = await post(own.url, path, body);
        expect(Date.now() - started).toBeLessThan(1500);
        expect(raw.status).toBe(502);
        expect(raw.json.error).toMatch(`Redis is unreachable at redis://127.0.0.1:${port}`);
      }
      const subscribeDown = await post(own.url, '/subscribe/ch', []);
      expect(subscribeDown.status).toBe(502);

      await server.start();
      await expect.poll(async () => (await post(own.url, '/', ['SET', 'k', 'back'])).json, { timeout: 5000 }).toEqual({ result: 'OK' });
      expect((await post(own.url, '/multi-exec', [['GET', 'k']])).json).toEqual([{ result: 'back' }]);
      const again = await open('/subscribe/ch');
      const reader = again.body!.getReader();
      expect(Buffer.from((await reader.read()).value!).toString()).toBe('data: subscribe,ch,1\n\n');
      await reader.cancel();
    } finally {
      await own.close();
    }
  });
});
