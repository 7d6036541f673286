import { Redis as IORedis } from 'ioredis';
import { type Bridge, createBridge } from '../../src/bridge/index.js';
import { upstashBackend } from '../../src/backends/upstash/index.js';
import { deleteKeysWithPrefix, uniquePrefix } from '../helpers/redis.js';
import { runBackendContract } from './backend-contract.js';

const TOKEN = 'contract-token';

/** The real @upstash REST protocol, spoken to the project's bridge in front of the real Redis. */
for (const mode of ['subscribe', 'poll'] as const) {
  runBackendContract(`upstash (${mode}, through the bridge)`, async () => {
    const bridge: Bridge = await createBridge({ token: TOKEN });
    const prefix = uniquePrefix(`upstash-${mode}`);
    const backend = upstashBackend({ url: bridge.url, token: TOKEN, prefix, mode, pollIntervalMs: 200 });
    return {
      backend,
      exactTrim: false,
      async close() {
        await backend.close();
        await bridge.close();
        const redis = new IORedis();
        await deleteKeysWithPrefix(redis, prefix);
        redis.disconnect();
      },
    };
  });
}
