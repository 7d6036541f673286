import { Redis as IORedis } from 'ioredis';
import { redisBackend } from '../../src/backends/redis/index.js';
import { REDIS_URL, deleteKeysWithPrefix, uniquePrefix } from '../helpers/redis.js';
import { runBackendContract } from './backend-contract.js';

runBackendContract('redis (TCP, XREAD BLOCK)', async () => {
  const prefix = uniquePrefix('redis-backend');
  const backend = redisBackend({ url: REDIS_URL, prefix });
  return {
    backend,
    exactTrim: false,
    async close() {
      await backend.close();
      const redis = new IORedis(REDIS_URL);
      await deleteKeysWithPrefix(redis, prefix);
      redis.disconnect();
    },
  };
});
