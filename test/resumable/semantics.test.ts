/**
 * What resumable-stream's README and types promise, on every backend: idempotent create-or-resume,
 * several followers, skipCharacters, null once done, undefined / null / true / "DONE" — and what
 * edge-sse adds: replaying a finished stream, cursors, ends that followers see, bounded readers.
 * The producer and the follower use two backends on one store, as two instances of an app would.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ValidationError, createStreamHandler, memoryBackend } from '../../src/index.js';
import { SSEReader, streamRequest } from '../helpers/sse.js';
import { waitUntil } from '../helpers/wait.js';
import { ResumableStreamError, createResumableStreamContext } from '../../src/resumable/index.js';
import { manualSource, readText, readUntil, subjects, timedSource } from './helpers.js';

const words = (count: number) => Array.from({ length: count }, (_, n) => `w${n} `);
let unique = 0;
const newId = () => `chat-${process.pid}-${Date.now()}-${unique++}`;

for (const subject of subjects('resumable')) {
  describe(`resumable streams: ${subject.name}`, () => {
    const contexts = (options: Partial<Parameters<typeof createResumableStreamContext>[0]> = {}) => {
      const { producer, follower } = subject.pair();
      return {
        producer: createResumableStreamContext({ backend: producer, waitUntil: null, ...options }),
        follower: createResumableStreamContext({ backend: follower, waitUntil: null, ...options }),
      };
    };

    it('creates on the first call and resumes on the next: makeStream runs once, each reader gets all, in order', async () => {
      const { producer, follower } = contexts();
      const id = newId();
      const source = manualSource();
      let made = 0;
      const make = () => (made++, source.stream);
      const first = await producer.resumableStream(id, make);
      source.push('Hello, ');
      const firstReader = first!.getReader();
      expect(await readUntil(firstReader, 7)).toBe('Hello, ');
      const second = await follower.resumableStream(id, make);
      const third = await follower.resumableStream(id, make);
      source.push('wor');
      source.push('ld.');
      source.end();
      const [a, b, c] = await Promise.all([readUntil(firstReader, 13, 'Hello, '), readText(second!), readText(third!)]);
      expect([a, b, c]).toEqual(['Hello, world.', 'Hello, world.', 'Hello, world.']);
      expect(made).toBe(1);
    });

    it('skips characters when resuming, also inside a stored batch', async () => {
      const { producer, follower } = contexts();
      const id = newId();
      const source = manualSource();
      const own = await producer.resumableStream(id, () => source.stream);
      source.push('abcdef');
      source.push('ghij');
      const resumed = await follower.resumableStream(id, () => source.stream, 3);
      const byCount = await follower.resumeExistingStream(id, 8);
      source.push('kl');
      source.end();
      expect(await readText(resumed!)).toBe('defghijkl');
      expect(await readText(byCount!)).toBe('ijkl');
      expect(await readText(own!)).toBe('abcdefghijkl');
    });

    it('answers undefined / null / true / "DONE" where resumable-stream does', async () => {
      const { producer, follower } = contexts();
      const id = newId();
      expect(await follower.resumeExistingStream(id)).toBeUndefined();
      expect(await follower.hasExistingStream(id)).toBeNull();
      const source = manualSource();
      const own = await producer.createNewResumableStream(id, () => source.stream);
      expect(await follower.hasExistingStream(id)).toBe(true);
      source.push('done soon');
      source.end();
      expect(await readText(own!)).toBe('done soon');
      await expect.poll(() => follower.hasExistingStream(id)).toBe('DONE');
      expect(await follower.resumeExistingStream(id)).toBeNull();
      expect(await follower.resumableStream(id, () => timedSource(['again'], 0))).toBeNull();
      expect(await follower.createNewResumableStream(id, () => timedSource(['again'], 0))).toBeNull();
    });

    it('ends followers when the stream ends, and keeps producing after its first reader left', async () => {
      const { producer, follower } = contexts();
      const id = newId();
      const source = manualSource();
      const own = await producer.resumableStream(id, () => source.stream);
      source.push('one ');
      await own!.cancel(); // the client reloaded
      const resumed = await follower.resumeExistingStream(id);
      source.push('two ');
      source.push('three');
      source.end();
      expect(await readText(resumed!)).toBe('one two three');
      expect(source.cancelled).toBeUndefined();
    });

    it('ends followers with the error when the source fails, and reports the stream done', async () => {
      const { producer, follower } = contexts();
      const id = newId();
      const source = manualSource();
      const own = await producer.resumableStream(id, () => source.stream);
      const ownText = readText(own!).catch((error: unknown) => error);
      source.push('partial ');
      const resumed = await follower.resumeExistingStream(id);
      const reader = resumed!.getReader();
      expect(await readUntil(reader, 8)).toBe('partial ');
      source.error(new Error('the model went away'));
      const failure = await reader.read().catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(ResumableStreamError);
      expect((failure as Error).message).toMatch(/failed: Error: the model went away/);
      expect(await ownText).toMatchObject({ message: 'the model went away' });
      expect(await follower.hasExistingStream(id)).toBe('DONE');
      expect(await follower.resumeExistingStream(id)).toBeNull();
    });

    it('replays a finished stream whole for its TTL with replayFinished, failed ones with their error', async () => {
      const { producer, follower } = contexts({ replayFinished: true });
      const id = newId();
      expect(await readText((await producer.resumableStream(id, () => timedSource(words(30), 1)))!)).toBe(words(30).join(''));
      await expect.poll(() => follower.hasExistingStream(id)).toBe('DONE');
      expect(await readText((await follower.resumeExistingStream(id))!)).toBe(words(30).join(''));
      expect(await readText((await follower.resumableStream(id, () => timedSource(['never'], 0), 5))!)).toBe(words(30).join('').slice(5));
      const failedId = newId();
      const source = manualSource();
      const own = await producer.resumableStream(failedId, () => source.stream);
      source.push('so far');
      source.error(new Error('boom'));
      await expect(readText(own!)).rejects.toThrow('boom');
      await expect.poll(() => follower.hasExistingStream(failedId)).toBe('DONE');
      const replay = (await follower.resumeExistingStream(failedId))!.getReader();
      expect(await readUntil(replay, 6)).toBe('so far'); // all the text first, then the error
      await expect(replay.read()).rejects.toThrow(/failed: Error: boom/);
    });

    it('resumes from a cursor: exactly the text after it', async () => {
      const { producer, follower } = contexts();
      const id = newId();
      const source = manualSource();
      await producer.resumableStream(id, () => source.stream);
      source.push('first batch. ');
      const chunks = await follower.resumeExistingStreamWithCursors(id);
      const reader = chunks!.getReader();
      const { value: firstChunk } = await reader.read();
      expect(firstChunk!.text).toBe('first batch. ');
      await reader.cancel(); // the follower's connection dropped
      source.push('second. ');
      source.push('third.');
      source.end();
      const rest = await follower.resumeExistingStream(id, { cursor: firstChunk!.cursor });
      expect(await readText(rest!)).toBe('second. third.');
      const restSkipping = await follower.resumeExistingStream(id, { cursor: firstChunk!.cursor, skipCharacters: 3 }).catch(() => null);
      // Finished by now (no replay): null, as any resume of a finished stream.
      expect(restSkipping === null || (await readText(restSkipping!)) === 'ond. third.').toBe(true);
    });

    it('leaves no reader open once its followers are done or gone', async () => {
      const backends = subject.pair();
      const producer = createResumableStreamContext({ backend: backends.producer, waitUntil: null });
      const follower = createResumableStreamContext({ backend: backends.follower, waitUntil: null });
      const id = newId();
      const source = manualSource();
      await producer.resumableStream(id, () => source.stream);
      source.push('x');
      const [finishing, leaving] = [await follower.resumeExistingStream(id), await follower.resumeExistingStream(id)];
      const leaver = leaving!.getReader();
      expect(await readUntil(leaver, 1)).toBe('x');
      // The memory backend holds no subscription; the others do while someone follows.
      if (subject.name !== 'memory') await expect.poll(() => backends.follower.stats().subscriptions ?? 0).toBeGreaterThan(0);
      await leaver.cancel();
      source.end();
      expect(await readText(finishing!)).toBe('x');
      await expect.poll(() => backends.follower.stats().subscriptions ?? 0).toBe(0);
    });

    // Where there is a reader to share: not in memory (no subscriptions), not with unshared readers.
    const sharesReaders = subject.name !== 'memory' && !subject.name.includes('unshared');
    if (sharesReaders)
      it("shares the stream handler's reader: a follower and an SSE client of the same channel cost one", async () => {
        const backends = subject.pair();
        const producer = createResumableStreamContext({ backend: backends.producer, waitUntil: null });
        const follower = createResumableStreamContext({ backend: backends.follower, waitUntil: null });
        const handler = createStreamHandler({ backend: backends.follower });
        const id = newId();
        const source = manualSource();
        await producer.resumableStream(id, () => source.stream);
        const sse = new SSEReader(await handler(streamRequest(`?channel=${encodeURIComponent(`resumable-stream/${id}`)}`)));
        await sse.waitForReady();
        const resumed = (await follower.resumeExistingStream(id))!.getReader();
        source.push('shared');
        expect(await readUntil(resumed, 6)).toBe('shared');
        expect(backends.follower.stats().subscriptions).toBe(1);
        source.end();
        await resumed.cancel();
        await sse.cancel();
      });

    it('stores text in few batches while nobody follows', async () => {
      const { producer: backend } = subject.pair();
      const context = createResumableStreamContext({ backend, waitUntil: null, idleFlushMs: 200 });
      const before = backend.stats().requests;
      // 100 chunks over ~0.5 s: the start, about one append per 200 ms, and the end riding in the last.
      const text = await readText((await context.resumableStream(newId(), () => timedSource(words(100), 5)))!);
      expect(text).toBe(words(100).join(''));
      const requests = backend.stats().requests - before;
      expect(requests).toBeGreaterThanOrEqual(2);
      expect(requests).toBeLessThanOrEqual(8);
    });

    it('passes text to a follower at the short interval once it follows', async () => {
      // Nobody following, text is stored only when a batch fills (16 characters) or after a minute.
      const backends = subject.pair();
      const options = { waitUntil: null, idleFlushMs: 60_000, flushMs: 10, maxBatchChars: 16 };
      const producer = createResumableStreamContext({ backend: backends.producer, ...options });
      const follower = createResumableStreamContext({ backend: backends.follower, ...options });
      const id = newId();
      const source = manualSource();
      await producer.resumableStream(id, () => source.stream);
      source.push('0123456789abcdef');
      const resumed = (await follower.resumeExistingStream(id))!.getReader();
      expect(await readUntil(resumed, 16)).toBe('0123456789abcdef');
      const marked = async () => {
        const [read] = await backends.follower.read([{ channel: `resumable-stream/${id}`, after: '0-0' }], 100);
        return read!.events.some((event) => event.type === 'rs.follow');
      };
      await expect.poll(marked).toBe(true);
      source.push('ghijklmnopqrstuv'); // the next append shows the producer that someone appended in between
      expect(await readUntil(resumed, 32, '0123456789abcdef')).toBe('0123456789abcdefghijklmnopqrstuv');
      source.push('live'); // 4 characters: stored after flushMs now, not after idleFlushMs
      expect(await readUntil(resumed, 36, '0123456789abcdefghijklmnopqrstuv')).toMatch(/live$/);
      source.end();
      await resumed.cancel();
    });
  });
}

describe('resumable streams: input', () => {
  const context = createResumableStreamContext({ backend: memoryBackend(), waitUntil: null });

  it('refuses stream ids that cannot name a channel safely', async () => {
    for (const id of ['', 'a/b', 'a~end', '..', 'a..b', '.', 'x'.repeat(200), 'spa ce', 'ünï', 12 as unknown as string]) {
      const refused = await context.resumeExistingStream(id).catch((error: unknown) => error);
      expect(refused, String(id)).toBeInstanceOf(ValidationError);
      expect((refused as ValidationError).code).toBe('INVALID_CHANNEL');
      expect((refused as Error).message).toMatch(/Invalid resumable stream id/);
    }
    await expect(context.resumeExistingStream('ok_id-1.2:3@x')).resolves.toBeUndefined();
  });

  it('refuses bad options, positions and sources with errors that say what to fix', async () => {
    expect(() => createResumableStreamContext({ waitUntil: null } as never)).toThrow(/needs a backend/);
    expect(() => createResumableStreamContext({ backend: memoryBackend(), waitUntil: 5 as never })).toThrow(/waitUntil must be a function/);
    expect(() => createResumableStreamContext({ backend: memoryBackend(), waitUntil: null, keyPrefix: 'a/b' })).toThrow(/keyPrefix/);
    await expect(context.resumeExistingStream('x', -1)).rejects.toThrow(/skipCharacters must be a whole number/);
    await expect(context.resumeExistingStream('x', { cursor: 'nope' })).rejects.toMatchObject({ code: 'INVALID_CURSOR' });
    await expect(context.resumableStream('x', 'no' as never)).rejects.toThrow(/makeStream must be a function/);
    const bytes = await context.resumableStream(
      'bytes',
      () => new ReadableStream({ start: (c) => c.enqueue(new Uint8Array([1]) as never) }),
    );
    await expect(readText(bytes!)).rejects.toThrow(/carries strings; its source gave bytes \(pipe the stream through a TextDecoderStream/);
    await expect.poll(() => context.hasExistingStream('bytes')).toBe('DONE');
  });

  it('keeps a surrogate pair whole across batches', async () => {
    const backend = memoryBackend();
    const tight = createResumableStreamContext({ backend, waitUntil: null, maxBatchChars: 16, idleFlushMs: 0 });
    const text = `${'a'.repeat(15)}😀${'b'.repeat(15)}😀`;
    const chunks = [text.slice(0, 16), text.slice(16)];
    expect(await readText((await tight.resumableStream('emoji', () => timedSource(chunks, 5)))!)).toBe(text);
    const [read] = await backend.read([{ channel: 'resumable-stream/emoji', after: '0-0' }], 100);
    for (const event of read!.events)
      expect(event.data).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
  });

  it('cuts off a reader that leaves its queue growing past maxQueuedChars; the stream goes on for others', async () => {
    const backend = memoryBackend();
    const bounded = createResumableStreamContext({ backend, waitUntil: null, maxQueuedChars: 1024, maxBatchChars: 100 });
    const source = manualSource();
    const own = await bounded.resumableStream('big', () => source.stream);
    const stalled = await bounded.resumeExistingStream('big');
    for (let n = 0; n < 10; n++) source.push('x'.repeat(200));
    source.end();
    await expect.poll(() => bounded.hasExistingStream('big')).toBe('DONE');
    await expect(readText(stalled!)).rejects.toThrow(/left \d+ characters unread \(limit 1024\)/);
    await expect(readText(own!)).rejects.toThrow(/unread/);
    const patient = await createResumableStreamContext({ backend, waitUntil: null, replayFinished: true }).resumeExistingStream('big');
    expect(await readText(patient!)).toHaveLength(2000);
  });
});

describe('resumable streams: a store that fails', () => {
  it('retries a batch whose request failed after it was stored: followers get its text once', async () => {
    const inner = memoryBackend();
    let failNext = false;
    let textAppends = 0;
    const flaky = {
      ...inner,
      async append(...args: Parameters<typeof inner.append>) {
        const ids = await inner.append(...args);
        if (!args[0].some((event) => event.type === 'rs.text')) return ids;
        textAppends++;
        if (failNext) {
          failNext = false;
          throw new Error('the answer was lost on the way back');
        }
        return ids;
      },
    };
    const context = createResumableStreamContext({ backend: flaky, waitUntil: null, idleFlushMs: 0 });
    const source = manualSource();
    const own = await context.resumableStream('flaky', () => source.stream);
    const follower = await context.resumeExistingStream('flaky');
    failNext = true;
    const stored = textAppends;
    source.push('once ');
    await waitUntil(() => textAppends === stored + 2); // stored, failed, stored again by the retry
    source.push('and again');
    source.end();
    expect(await readText(follower!)).toBe('once and again');
    expect(await readText(own!)).toBe('once and again');
    const [read] = await inner.read([{ channel: 'resumable-stream/flaky', after: '0-0' }], 100);
    expect(read!.events.filter((event) => event.data.startsWith('1:once'))).toHaveLength(2); // stored twice, read once
  });
});

describe('resumable streams: a quiet producer', () => {
  afterEach(() => void vi.useRealTimers());

  it('is not taken for a dead one: its heartbeats keep followers waiting past producerTimeoutMs', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    const context = createResumableStreamContext({ backend: memoryBackend(), waitUntil: null, producerTimeoutMs: 30_000 });
    const source = manualSource();
    await context.resumableStream('quiet', () => source.stream);
    source.push('before a long think, ');
    const follower = await context.resumeExistingStream('quiet');
    const text = readText(follower!);
    await vi.advanceTimersByTimeAsync(10 * 30_000); // silent for 10 × producerTimeoutMs
    source.push('after it');
    source.end();
    await vi.advanceTimersByTimeAsync(30_000); // the last batch's flush, whenever it is due
    expect(await text).toBe('before a long think, after it');
  });
});
