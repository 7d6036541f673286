import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSSE } from '../../src/index.js';
import type { Backend, FeedListener, NewEvent, Retention, StoredEvent } from '../../src/backends/index.js';
import { compareIds } from '../../src/wire/ids.js';
import { SSEReader, sleep, streamRequest, waitUntil } from '../helpers/sse.js';

export interface ContractSubject {
  backend: Backend;
  /** Trims exactly (memory) or approximately (Redis `MAXLEN ~`, whole 100-entry nodes). */
  exactTrim: boolean;
  close?: () => Promise<void>;
}

const RETENTION: Retention = { maxLength: 1000, ttlSeconds: 3600 };
let unique = 0;
/** Channel names unique to one test, so suites never see each other's events. */
const channelName = (label: string) => `contract.${label}.${process.pid}.${Date.now()}.${unique++}`;

const event = (channel: string, n: number, extra: Partial<NewEvent> = {}): NewEvent => ({
  channel,
  type: 'tick',
  data: `event ${n}`,
  json: false,
  ...extra,
});

async function waitUntilAsync(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** What a feed reports: its events, its errors, and a log of both and of each start, in order. */
function recorder() {
  const received: { channel: string; event: StoredEvent }[] = [];
  const errors: unknown[] = [];
  const log: string[] = [];
  const listener: FeedListener = {
    onFollowing: (channel, position) => void log.push(`following ${channel} ${position}`),
    onEvents: (channel, events) => {
      for (const event of events) received.push({ channel, event });
      log.push(`events ${channel} ${events.length}`);
    },
    onError: (channel, error) => {
      errors.push(error);
      log.push(`error ${channel} ${error.message}`);
    },
  };
  return {
    listener,
    log,
    errors,
    get received() {
      return received.map(({ event }) => event);
    },
    idsOf: (channel: string) => received.filter((entry) => entry.channel === channel).map(({ event }) => event.id),
    startOf: (channel: string) => log.find((line) => line.startsWith(`following ${channel} `))?.split(' ')[2],
  };
}

/** The promises every backend keeps; run it once per backend (and mode). */
export function runBackendContract(name: string, create: () => Promise<ContractSubject>): void {
  describe(`backend contract: ${name}`, () => {
    let subject: ContractSubject;
    let backend: Backend;

    beforeAll(async () => {
      subject = await create();
      backend = subject.backend;
    });
    afterAll(async () => {
      await subject?.close?.();
    });

    it('appends in one call and returns increasing stream ids in order', async () => {
      const channel = channelName('append');
      const ids = await backend.append(
        [1, 2, 3].map((n) => event(channel, n)),
        RETENTION,
      );
      expect(ids).toHaveLength(3);
      for (const id of ids) expect(id).toMatch(/^\d+-\d+$/);
      expect(compareIds(ids[0]!, ids[1]!)).toBeLessThan(0);
      expect(compareIds(ids[1]!, ids[2]!)).toBeLessThan(0);
    });

    it('reads after a cursor, oldest first, keeping type, data and the JSON flag', async () => {
      const channel = channelName('read');
      const ids = await backend.append(
        [event(channel, 1), event(channel, 2, { type: 'other', data: '{"a":1}', json: true }), event(channel, 3)],
        RETENTION,
      );
      const [all] = await backend.read([{ channel, after: '0-0' }], 100);
      expect(all!.events).toEqual<StoredEvent[]>([
        { id: ids[0]!, type: 'tick', data: 'event 1', json: false },
        { id: ids[1]!, type: 'other', data: '{"a":1}', json: true },
        { id: ids[2]!, type: 'tick', data: 'event 3', json: false },
      ]);
      expect(all!.head).toBe(ids[2]);
      expect(all!.gap).toBeUndefined();
      const [after] = await backend.read([{ channel, after: ids[0]! }], 1);
      expect(after!.events.map((e) => e.id)).toEqual([ids[1]]);
    });

    it('keeps payloads byte for byte: empty, line breaks, NUL, unicode', async () => {
      const channel = channelName('payloads');
      const payloads = ['', ' lead', ':colon', 'a\r\nb\rc\nd', '\n\n', 'nul\0byte', 'héllo 🌍 中文', 'x'.repeat(50_000)];
      await backend.append(
        payloads.map((data) => event(channel, 0, { data })),
        RETENTION,
      );
      const [read] = await backend.read([{ channel, after: '0-0' }], 100);
      expect(read!.events.map((e) => e.data)).toEqual(payloads);
    });

    it('reads several channels in one call, each from its own cursor', async () => {
      const [a, b] = [channelName('multi-a'), channelName('multi-b')];
      const ids = await backend.append([event(a, 1), event(b, 1), event(a, 2)], RETENTION);
      const reads = await backend.read(
        [
          { channel: a, after: ids[0]! },
          { channel: b, after: '0-0' },
        ],
        100,
      );
      expect(reads.map((read) => read.events.map((e) => e.data))).toEqual([['event 2'], ['event 1']]);
      expect(reads.map((read) => read.head)).toEqual([ids[2], ids[1]]);
    });

    it('reports an empty channel with head 0-0', async () => {
      const channel = channelName('empty');
      expect(await backend.read([{ channel, after: '0-0' }], 10)).toEqual([{ events: [], head: '0-0' }]);
      expect(await backend.tail([channel], 5)).toEqual([{ head: '0-0', events: [] }]);
    });

    it('tails: the head and the newest events, oldest first', async () => {
      const channel = channelName('tail');
      const ids = await backend.append(
        [1, 2, 3, 4].map((n) => event(channel, n)),
        RETENTION,
      );
      const [tail] = await backend.tail([channel], 2);
      expect(tail!.head).toBe(ids[3]);
      expect(tail!.events.map((e) => e.id)).toEqual([ids[2], ids[3]]);
      const [headOnly] = await backend.tail([channel], 0);
      expect(headOnly).toEqual({ head: ids[3], events: [] });
    });

    it('honours maxLength and reports a gap for a cursor behind the trimmed history', async () => {
      const channel = channelName('trim');
      const count = subject.exactTrim ? 10 : 1000;
      const maxLength = subject.exactTrim ? 4 : 100;
      const batch = Array.from({ length: count }, (_, n) => event(channel, n));
      const ids = await backend.append(batch, { maxLength, ttlSeconds: 60 });
      const [read] = await backend.read([{ channel, after: '0-0' }], 10_000);
      if (subject.exactTrim) expect(read!.events).toHaveLength(maxLength);
      else {
        expect(read!.events.length).toBeGreaterThanOrEqual(maxLength);
        expect(read!.events.length).toBeLessThan(count);
      }
      expect(read!.events.at(-1)!.id).toBe(ids.at(-1));
      expect(read!.gap).toEqual({ firstId: read!.events[0]!.id });
      const [fromRetained] = await backend.read([{ channel, after: read!.events[0]!.id }], 10);
      expect(fromRetained!.gap).toBeUndefined();
    });

    it('deletes a channel ttlSeconds after its last event', async () => {
      const channel = channelName('ttl');
      await backend.append([event(channel, 1)], { maxLength: 10, ttlSeconds: 1 });
      expect((await backend.tail([channel], 1))[0]!.events).toHaveLength(1);
      await waitUntilAsync(async () => (await backend.tail([channel], 0))[0]!.head === '0-0', 1300); // the store's clock: real time
      expect(await backend.tail([channel], 1)).toEqual([{ head: '0-0', events: [] }]);
    });

    it('reports a gap, not an error, for a position past the head (the channel expired or the store restarted)', async () => {
      const [gone, kept] = [channelName('ahead-empty'), channelName('ahead-kept')];
      const ids = await backend.append([event(kept, 1), event(kept, 2)], RETENTION);
      const future = '99999999999999-0';
      const reads = await backend.read(
        [
          { channel: gone, after: future },
          { channel: kept, after: future },
        ],
        10,
      );
      expect(reads).toEqual([
        { events: [], head: '0-0', gap: { firstId: null } },
        { events: [], head: ids[1], gap: { firstId: ids[0] } },
      ]);
      const [atHead] = await backend.read([{ channel: kept, after: ids[1]! }], 10);
      expect(atHead).toEqual({ events: [], head: ids[1] });
    });

    it('reports a gap for a position older than the first event a recreated channel ever held', async () => {
      const channel = channelName('recreated');
      const [old] = await backend.append([event(channel, 1)], { maxLength: 10, ttlSeconds: 1 });
      await waitUntilAsync(async () => (await backend.tail([channel], 0))[0]!.head === '0-0', 5000);
      const fresh = await backend.append([event(channel, 2), event(channel, 3)], RETENTION);
      const [afterOld, fromStart, afterFirst] = await backend.read(
        [
          { channel, after: old! },
          { channel, after: '0-0' },
          { channel, after: fresh[0]! },
        ],
        10,
      );
      // The old stream may have held events after `old` that expired with it: that is a gap.
      expect(afterOld!.gap).toEqual({ firstId: fresh[0] });
      expect(afterOld!.events.map((e) => e.id)).toEqual(fresh);
      // 0-0 asks for everything, and nothing was trimmed; a position of this stream is no gap either.
      expect(fromStart!.gap).toBeUndefined();
      expect(afterFirst!.gap).toBeUndefined();
      expect(afterFirst!.events.map((e) => e.id)).toEqual([fresh[1]]);
    });

    it('feeds: follows from a position, reports it, and delivers every later event once, in order', async () => {
      const channel = channelName('feed');
      const [before] = await backend.append([event(channel, 0)], RETENTION);
      const record = recorder();
      const feed = backend.createFeed(record.listener);
      try {
        feed.follow(channel, before!);
        await sleep(50); // to append once it is live (not a backlog): a feed does not say when it is
        const ids: string[] = [];
        for (let n = 1; n <= 20; n++) ids.push(...(await backend.append([event(channel, n)], RETENTION)));
        await waitUntil(() => record.received.length >= 20);
        expect(record.received.map((e) => e.id)).toEqual(ids);
        expect(record.log[0]).toBe(`following ${channel} ${before}`);
        expect(record.log.filter((line) => line.startsWith('following'))).toHaveLength(1);
        expect(record.errors).toEqual([]);
      } finally {
        feed.close();
      }
    });

    it("feeds: from 'head', reports the head it starts at and delivers what follows it once, in order, also while it starts", async () => {
      const [busy, empty] = [channelName('head-busy'), channelName('head-empty')];
      const [first] = await backend.append([event(busy, 0)], RETENTION);
      const record = recorder();
      const feed = backend.createFeed(record.listener);
      try {
        // Publishing while the feed starts: what is after the head it reports must come, once.
        const publishing = (async () => {
          for (let n = 1; n <= 30; n++) {
            await backend.append([event(busy, n)], RETENTION);
            if (n % 5 === 0) await sleep(5);
          }
        })();
        feed.follow(busy, 'head');
        feed.follow(empty, 'head');
        await publishing;
        await waitUntil(() => record.startOf(busy) !== undefined && record.startOf(empty) !== undefined);
        expect(record.startOf(empty)).toBe('0-0');
        const [stored] = await backend.read([{ channel: busy, after: '0-0' }], 1000);
        const storedIds = stored!.events.map((e) => e.id);
        const start = record.startOf(busy)!;
        expect(storedIds).toContain(start);
        expect(compareIds(start, first!)).toBeGreaterThanOrEqual(0);
        const later = await backend.append([event(busy, 31), event(empty, 1)], RETENTION);
        const expected = [...storedIds.filter((id) => compareIds(id, start) > 0), later[0]];
        await waitUntil(() => record.idsOf(busy).length >= expected.length && record.idsOf(empty).length >= 1);
        await sleep(100); // nothing twice
        expect(record.idsOf(busy)).toEqual(expected);
        expect(record.idsOf(empty)).toEqual([later[1]]);
        // Each start reported once, before its channel's events.
        for (const channel of [busy, empty]) {
          const lines = record.log.filter((line) => line.includes(` ${channel} `));
          expect(lines.filter((line) => line.startsWith('following'))).toHaveLength(1);
          expect(lines[0]).toMatch(/^following /);
        }
        expect(record.errors).toEqual([]);
      } finally {
        feed.close();
      }
    });

    it('feeds: a backlog after the follow position is delivered first', async () => {
      const channel = channelName('backlog');
      const ids = await backend.append(
        [1, 2, 3].map((n) => event(channel, n)),
        RETENTION,
      );
      const received: string[] = [];
      const feed = backend.createFeed({
        onFollowing() {},
        onEvents: (_, events) => received.push(...events.map((e) => e.id)),
        onError() {},
      });
      try {
        feed.follow(channel, ids[0]!);
        await waitUntil(() => received.length >= 2);
        const [later] = await backend.append([event(channel, 4)], RETENTION);
        await waitUntil(() => received.length >= 3);
        expect(received).toEqual([ids[1], ids[2], later]);
      } finally {
        feed.close();
      }
    });

    it('feeds: unfollow and close stop delivery', async () => {
      const [a, b] = [channelName('unfollow-a'), channelName('unfollow-b')];
      const received: string[] = [];
      const feed = backend.createFeed({ onFollowing() {}, onEvents: (channel) => received.push(channel), onError() {} });
      feed.follow(a, '0-0');
      feed.follow(b, '0-0');
      await backend.append([event(a, 1), event(b, 1)], RETENTION);
      await waitUntil(() => received.length >= 2);
      feed.unfollow(a);
      await sleep(50); // to append once the unfollow took effect: a feed does not say when it has
      await backend.append([event(a, 2), event(b, 2)], RETENTION);
      await waitUntil(() => received.filter((channel) => channel === b).length >= 2);
      feed.close();
      await backend.append([event(a, 3), event(b, 3)], RETENTION);
      await sleep(300); // a closed feed has nothing to wait for: it must stay silent over a few poll intervals
      expect(received.filter((channel) => channel === a)).toHaveLength(1);
      expect(received.filter((channel) => channel === b)).toHaveLength(2);
    });

    it('stores appends made without waiting for each other in call order, per channel', async () => {
      const [a, b] = [channelName('unawaited-a'), channelName('unawaited-b')];
      // Paced like a producer streaming tokens: calls overlap, a few in flight at any moment.
      const calls: Promise<string[]>[] = [];
      for (let n = 0; n < 240; n++) {
        calls.push(backend.append([event(n % 3 === 0 ? b : a, n)], RETENTION));
        await sleep(n % 2);
      }
      const ids = (await Promise.all(calls)).map(([id]) => id!);
      const reads = await backend.read(
        [
          { channel: a, after: '0-0' },
          { channel: b, after: '0-0' },
        ],
        1000,
      );
      const callsOn = (channel: string) => ids.map((_, n) => n).filter((n) => (n % 3 === 0 ? b : a) === channel);
      for (const [index, channel] of [a, b].entries()) {
        expect(reads[index]!.events.map((e) => e.data)).toEqual(callsOn(channel).map((n) => `event ${n}`));
        expect(reads[index]!.events.map((e) => e.id)).toEqual(callsOn(channel).map((n) => ids[n]));
      }
    });

    it("reports each channel's newest id before an append to onPrevious, and nothing for a repeated key", async () => {
      const [a, b] = [channelName('previous-a'), channelName('previous-b')];
      const seen: Map<string, string>[] = [];
      const onPrevious = (previous: ReadonlyMap<string, string>) => void seen.push(new Map(previous));
      const [first] = await backend.append([event(a, 1)], RETENTION, { onPrevious });
      const ids = await backend.append([event(b, 2), event(a, 3), event(b, 4)], RETENTION, { onPrevious });
      const idempotency = { key: channelName('previous-key'), ttlSeconds: 60 };
      await backend.append([event(a, 5)], RETENTION, { onPrevious, idempotency });
      await backend.append([event(a, 5)], RETENTION, { onPrevious, idempotency });
      expect(seen).toEqual([
        new Map([[a, '0-0']]),
        new Map([
          [b, '0-0'],
          [a, first!],
        ]),
        new Map([[a, ids[1]!]]),
      ]);
    });

    it('appends with an idempotency key once: a repeat resolves to the same ids and stores nothing', async () => {
      const [a, b] = [channelName('idem-a'), channelName('idem-b')];
      const key = channelName('idem-key');
      const batch = [event(a, 1), event(b, 2), event(a, 3)];
      let repeats = 0;
      const once = { key, ttlSeconds: 60, onRepeat: () => repeats++ };
      const ids = await backend.append(batch, RETENTION, { idempotency: once });
      expect(repeats).toBe(0);
      await expect(backend.append(batch, RETENTION, { idempotency: once })).resolves.toEqual(ids);
      expect(repeats).toBe(1);
      const reads = await backend.read(
        [
          { channel: a, after: '0-0' },
          { channel: b, after: '0-0' },
        ],
        100,
      );
      expect(reads.map((read) => read.events.map((e) => e.id))).toEqual([[ids[0], ids[2]], [ids[1]]]);
      // Another key, or none, publishes again.
      const [other] = await backend.append([event(a, 4)], RETENTION, { idempotency: { key: `${key}.other`, ttlSeconds: 60 } });
      const [plain] = await backend.append([event(a, 5)], RETENTION);
      expect(compareIds(other!, ids[2]!)).toBeGreaterThan(0);
      expect(compareIds(plain!, other!)).toBeGreaterThan(0);
    });

    it('appends concurrent repeats of one idempotency key once', async () => {
      const channel = channelName('idem-burst');
      const idempotency = { key: channelName('idem-burst-key'), ttlSeconds: 60 };
      const results = await Promise.all(Array.from({ length: 5 }, () => backend.append([event(channel, 1)], RETENTION, { idempotency })));
      expect(new Set(results.map(([id]) => id)).size).toBe(1);
      const [read] = await backend.read([{ channel, after: '0-0' }], 100);
      expect(read!.events.map((e) => e.id)).toEqual(results[0]);
    });

    it('forgets an idempotency key ttlSeconds after its publish', async () => {
      const channel = channelName('idem-ttl');
      const idempotency = { key: channelName('idem-ttl-key'), ttlSeconds: 1 };
      const [first] = await backend.append([event(channel, 1)], RETENTION, { idempotency });
      await sleep(1100); // the store's clock: real time
      const [second] = await backend.append([event(channel, 1)], RETENTION, { idempotency });
      expect(compareIds(second!, first!)).toBeGreaterThan(0);
      const [read] = await backend.read([{ channel, after: '0-0' }], 100);
      expect(read!.events).toHaveLength(2);
    });

    it('streams: resumes across many reconnects with nothing lost, nothing twice, in order', async () => {
      const channel = channelName('resume');
      const sse = createSSE({ backend, maxDurationMs: 60_000 });
      const total = 60;
      const first = new SSEReader(await sse.handler(streamRequest(`?channel=${channel}`)));
      await first.waitFor(() => first.events.some((e) => e.event === 'sse:ready'), 'sse:ready');
      await first.cancel();
      const publishing = (async () => {
        for (let n = 0; n < total; n++) {
          await sse.sendEvent('n', String(n), { channel });
          if (n % 3 === 0) await sleep(5);
        }
      })();
      const seen: string[] = [];
      let cursor = first.lastId;
      for (let attempt = 0; attempt < 200 && seen.length < total; attempt++) {
        const reader = new SSEReader(await sse.handler(streamRequest(`?channel=${channel}`, { 'Last-Event-ID': cursor! })));
        const want = Math.min(total, seen.length + 7);
        await reader.waitFor(() => seen.length + reader.messages.length >= want, `${want} events`, 3000).catch(() => undefined);
        await reader.cancel();
        seen.push(...reader.messages.map((m) => m.data));
        cursor = reader.lastId ?? cursor;
      }
      await publishing;
      expect(seen).toEqual(Array.from({ length: total }, (_, n) => String(n)));
    });

    it('streams: a cursor behind trimmed history gets sse:gap, then what is kept', async () => {
      const channel = channelName('gap');
      const maxLength = subject.exactTrim ? 3 : 100;
      const count = subject.exactTrim ? 8 : 1000;
      const sse = createSSE({ backend, maxLength });
      const firstId = await sse.sendEvent('n', 'first', { channel });
      await sse.sendEvents(Array.from({ length: count }, (_, n) => ({ type: 'n', data: String(n), channel })));
      const reader = new SSEReader(await sse.handler(streamRequest(`?channel=${channel}`, { 'Last-Event-ID': firstId })));
      await reader.waitFor(() => reader.messages.at(-1)?.data === String(count - 1), 'the newest event');
      await reader.cancel();
      const gap = reader.events[0]!;
      expect(gap.event).toBe('sse:gap');
      const { firstId: firstKept } = JSON.parse(gap.data) as { firstId: string };
      expect(reader.events[1]!.id).toBe(firstKept);
      const kept = reader.messages.map((m) => Number(m.data));
      expect(kept).toEqual(Array.from({ length: kept.length }, (_, n) => count - kept.length + n));
    });

    it("streams: several channels' histories, longer than a read, arrive in id order across channels", async () => {
      const channels = [channelName('order-a'), channelName('order-b'), channelName('order-c')].sort();
      const sse = createSSE({ backend });
      const pattern = (n: number) => (n < 150 ? (n % 4 === 3 ? 1 : 0) : n % 10 === 0 ? 0 : 1 + (n % 2));
      for (let group = 0; group < 40; group++) {
        const batch = Array.from({ length: 10 }, (_, k) => group * 10 + k);
        await sse.sendEvents(batch.map((n) => ({ type: 'n', data: String(n), channel: channels[pattern(n)] })));
      }
      const query = `?${channels.map((channel) => `channel=${channel}`).join('&')}`;
      const reader = new SSEReader(await sse.handler(streamRequest(query, { 'Last-Event-ID': '0-0,0-0,0-0' })));
      await reader.waitForMessages(400);
      await reader.cancel();
      let previous = ['0-0', '0-0', '0-0'];
      const moved = reader.messages.map((message) => {
        const positions = message.id!.replace(';json', '').split(',');
        const channel = positions.findIndex((id, index) => id !== previous[index]);
        previous = positions;
        return { channel, id: positions[channel]!, n: Number(message.data) };
      });
      for (let n = 1; n < moved.length; n++) expect(compareIds(moved[n - 1]!.id, moved[n]!.id)).toBeLessThanOrEqual(0);
      for (const [index] of channels.entries()) {
        const sent = Array.from({ length: 400 }, (_, n) => n).filter((n) => pattern(n) === index);
        expect(moved.filter((event) => event.channel === index).map((event) => event.n)).toEqual(sent);
      }
    });

    it('streams: a cursor of a channel that expired gets 200, sse:gap, then live events', async () => {
      const channel = channelName('expired');
      const sse = createSSE({ backend, ttlSeconds: 1 });
      const lastSeen = await sse.sendEvent('n', 'before', { channel });
      await waitUntilAsync(async () => (await backend.tail([channel], 0))[0]!.head === '0-0', 5000);
      const response = await sse.handler(streamRequest(`?channel=${channel}`, { 'Last-Event-ID': lastSeen }));
      expect(response.status).toBe(200);
      const reader = new SSEReader(response);
      await reader.waitFor(() => reader.events.some((e) => e.event === 'sse:gap'), 'sse:gap');
      const gap = reader.events.find((e) => e.event === 'sse:gap')!;
      expect(JSON.parse(gap.data)).toEqual({ channel, firstId: null });
      const after = await sse.sendEvent('n', 'after', { channel });
      await reader.waitForMessages(1);
      await reader.cancel();
      expect(reader.messages.map((m) => [m.id, m.data])).toEqual([[after, 'after']]);
    });
  });
}
