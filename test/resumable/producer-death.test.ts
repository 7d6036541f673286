/**
 * A producer whose process dies mid-stream (SIGKILL, as a platform ends a function): what it had
 * stored stays resumable, and the stream is marked failed once nothing came for its
 * producerTimeoutMs (1.5 s here), so no follower hangs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Redis as IORedis } from 'ioredis';
import { afterAll, expect, it } from 'vitest';
import { redisBackend } from '../../src/backends/redis/index.js';
import { ResumableStreamError, createResumableStreamContext } from '../../src/resumable/index.js';
import { REDIS_URL, deleteKeysWithPrefix, uniquePrefix } from '../helpers/redis.js';
import { readUntil } from './helpers.js';

const prefix = uniquePrefix('resumable-death');
const backend = redisBackend({ url: REDIS_URL, prefix });
let child: ChildProcess | undefined;

afterAll(async () => {
  child?.kill('SIGKILL');
  await backend.close();
  const redis = new IORedis(REDIS_URL);
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
});

function startProducer(id: string): Promise<void> {
  child = spawn(process.execPath, ['--import', 'tsx', 'test/resumable/fixtures/producer.ts', REDIS_URL, prefix, id], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child!.stdout!.on('data', (data: Buffer) => {
      const stored = /stored (\d+)/.exec(String(data));
      if (stored && Number(stored[1]) >= 3) resolve();
    });
    child!.once('exit', (code) => reject(new Error(`the producer exited (${code})`)));
  });
}

it('keeps what a killed producer stored resumable, then ends its followers with a failure', async () => {
  const id = `killed-${Date.now()}`;
  await startProducer(id);
  const context = createResumableStreamContext({ backend, waitUntil: null, replayFinished: true });
  const follower = (await context.resumeExistingStream(id))!.getReader();
  let text = await readUntil(follower, 1);
  const exited = new Promise((resolve) => child!.once('exit', resolve));
  child!.kill('SIGKILL');
  await exited;

  // Resumed after the death, before the timeout: the stored text, then the same end.
  const late = (await context.resumeExistingStream(id))!.getReader();
  const ended = async (reader: ReadableStreamDefaultReader<string>, seen: string) => {
    let all = seen;
    for (;;) {
      const next = await reader.read().catch((error: unknown) => ({ error }));
      if ('error' in next) return { text: all, error: next.error };
      if (next.done) return { text: all, error: undefined };
      all += next.value;
    }
  };
  const [first, second] = await Promise.all([ended(follower, text), ended(late, '')]);
  for (const { text, error } of [first, second]) {
    expect(error).toBeInstanceOf(ResumableStreamError);
    expect((error as Error).message).toMatch(/The producer sent nothing for 1500 ms/);
    expect(text).toMatch(/^t0 t1 t2 (t\d+ )*$/);
  }
  expect(second.text).toBe(first.text);
  expect(await context.hasExistingStream(id)).toBe('DONE');
  // Replayed later (replayFinished): all that was stored, then the failure again.
  const replay = await ended((await context.resumeExistingStream(id))!.getReader(), '');
  expect(replay.text).toBe(first.text);
  expect(replay.error).toBeInstanceOf(ResumableStreamError);
  text = '';
  // Without replay: done is done.
  expect(await createResumableStreamContext({ backend, waitUntil: null }).resumeExistingStream(id)).toBeNull();
});
