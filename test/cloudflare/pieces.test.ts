/**
 * The pieces of edge-sse/cloudflare that need no workerd: the SSE parser a multi-channel object
 * reads its channels' objects with, the relay feed built on it, the feed that follows a dropped
 * channel again, and the keeper that holds an object's reader through its linger. Streams here
 * are real web streams of the frames a channel's object sends.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BackendError } from '../../src/common/errors.ts';
import type { FeedListener, LiveFeed, StoredEvent } from '../../src/backends/contract.ts';
import { formatComment, formatEvent, formatRetry } from '../../src/wire/frames.ts';
import { RelayFeed } from '../../src/cloudflare/relay-feed.ts';
import { ResilientFeed } from '../../src/cloudflare/resilient-feed.ts';
import { Keeper } from '../../src/cloudflare/keeper.ts';
import { type ParsedMessage, SSEParser } from '../../src/cloudflare/sse-parser.ts';
import { waitUntil } from '../helpers/wait.ts';

const encoder = new TextEncoder();

function parse(chunks: (string | Uint8Array)[]): { messages: ParsedMessage[]; retries: number[] } {
  const messages: ParsedMessage[] = [];
  const retries: number[] = [];
  const parser = new SSEParser({ onMessage: (message) => messages.push(message), onRetry: (ms) => retries.push(ms) });
  for (const chunk of chunks) parser.push(typeof chunk === 'string' ? encoder.encode(chunk) : chunk);
  return { messages, retries };
}

describe('SSEParser', () => {
  it('reads what formatEvent writes: ids, types, multi-line data, a leading space, retry hints; comments are skipped', () => {
    const text =
      formatRetry(1000, 'edge-sse') +
      formatEvent({ id: '1-0', event: 'multi', data: 'a\nb\r\nc' }) +
      formatComment() +
      formatEvent({ id: '2-0;json', event: 'x', data: ' spaced' });
    const { messages, retries } = parse([text]);
    expect(retries).toEqual([1000]);
    expect(messages).toEqual([
      { id: '1-0', event: 'multi', data: 'a\nb\nc' },
      { id: '2-0;json', event: 'x', data: ' spaced' },
    ]);
  });

  it('gives the same messages however the bytes are split: CRLF across chunks, UTF-8 characters across chunks', () => {
    const text = 'id: 1-0\r\nevent: t\r\ndata: é🎉\r\n\r\nid: 2-0\rdata: two\r\r';
    const bytes = encoder.encode(text);
    const whole = parse([bytes]).messages;
    expect(whole).toEqual([
      { id: '1-0', event: 't', data: 'é🎉' },
      { id: '2-0', event: 'message', data: 'two' },
    ]);
    for (let cut = 1; cut < bytes.length; cut++) {
      expect(parse([bytes.slice(0, cut), bytes.slice(cut)]).messages).toEqual(whole);
    }
  });

  it('dispatches nothing for a frame without data, and keeps the last id for a frame without one', () => {
    expect(parse(['id: 5-0\n\ndata: later\n\n']).messages).toEqual([{ id: '5-0', event: 'message', data: 'later' }]);
  });
});

/** A channel object's answers, one per request the relay makes; each records its Last-Event-ID. */
class FakeChannelObject {
  readonly requests: (string | undefined)[] = [];
  private controllers: ReadableStreamDefaultController<Uint8Array>[] = [];

  constructor(private answer: (attempt: number) => Response | 'stream' = () => 'stream') {}

  open = async (_channel: string, lastEventId: string | undefined, signal: AbortSignal): Promise<Response> => {
    this.requests.push(lastEventId);
    const answer = this.answer(this.requests.length);
    if (answer instanceof Response) return answer;
    const body = new ReadableStream<Uint8Array>({ start: (controller) => void this.controllers.push(controller) });
    signal.addEventListener('abort', () => this.controllers.at(-1)?.error(new Error('aborted')));
    return new Response(body, { headers: { 'Content-Type': 'text/event-stream' } });
  };

  send(text: string): void {
    this.controllers.at(-1)!.enqueue(encoder.encode(text));
  }

  end(): void {
    this.controllers.at(-1)!.close();
  }
}

function recorder() {
  const heads: string[] = [];
  const events: StoredEvent[] = [];
  const errors: BackendError[] = [];
  const listener: FeedListener = {
    onFollowing: (_channel, position) => heads.push(position),
    onEvents: (_channel, batch) => events.push(...batch),
    onError: (_channel, error) => errors.push(error),
  };
  return { heads, events, errors, listener };
}

const ready = (head: string) => formatEvent({ id: `${head};json`, event: 'sse:ready', data: '{"channels":["c"]}' });

describe('RelayFeed', () => {
  afterEach(() => void vi.useRealTimers());

  it('takes the head from sse:ready, skips events replayed before it, and relays events with their JSON flag', async () => {
    const object = new FakeChannelObject();
    const { heads, events, listener } = recorder();
    const feed = new RelayFeed(object.open, listener, { giveUpMs: 1000 });
    feed.follow('c', 'head');
    await waitUntil(() => object.requests.length === 1);
    object.send(formatRetry(1000) + formatEvent({ id: '1-0', event: 'old', data: 'replayed' }) + ready('1-0'));
    object.send(formatEvent({ id: '2-0;json', event: 'new', data: '{"a":1}' }) + formatEvent({ id: '3-0', event: 'new', data: 'text' }));
    await waitUntil(() => events.length === 2);
    expect(heads).toEqual(['1-0']);
    expect(events).toEqual([
      { id: '2-0', type: 'new', data: '{"a":1}', json: true },
      { id: '3-0', type: 'new', data: 'text', json: false },
    ]);
    feed.close();
  });

  it('reconnects from its position when the stream ends after being healthy, and drops repeats', async () => {
    const object = new FakeChannelObject();
    const { heads, events, errors, listener } = recorder();
    const feed = new RelayFeed(object.open, listener, { giveUpMs: 1000 });
    feed.follow('c', '5-0');
    await waitUntil(() => object.requests.length === 1);
    object.send(formatEvent({ id: '6-0', event: 'e', data: 'six' }));
    object.end(); // the channel object's stream reached its deadline
    await waitUntil(() => object.requests.length === 2);
    expect(object.requests).toEqual(['5-0', '6-0']);
    object.send(formatEvent({ id: '6-0', event: 'e', data: 'six' }) + formatEvent({ id: '7-0', event: 'e', data: 'seven' }));
    await waitUntil(() => events.length === 2);
    expect(events.map((event) => event.data)).toEqual(['six', 'seven']);
    expect(heads).toEqual(['5-0']); // where it started, reported once
    expect(errors).toEqual([]);
    feed.close();
  });

  it('waits the retry hint between quick failures, and reports an error once failing for giveUpMs', async () => {
    const object = new FakeChannelObject(
      () => new Response(formatRetry(50, 'backend unavailable'), { headers: { 'Content-Type': 'text/event-stream' } }),
    );
    const { errors, listener } = recorder();
    const feed = new RelayFeed(object.open, listener, { giveUpMs: 300 });
    const started = Date.now();
    feed.follow('c', '1-0');
    await waitUntil(() => errors.length === 1, 3000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    // 50 ms apart: a handful of attempts, not a busy loop.
    expect(object.requests.length).toBeGreaterThan(2);
    expect(object.requests.length).toBeLessThan(15);
    expect(errors[0]!.code).toBe('BACKEND_UNAVAILABLE');
  });

  it('a refusal (4xx) is reported at once, and so is a gap (its listeners resume against Redis and get sse:gap there)', async () => {
    const refused = recorder();
    new RelayFeed(async () => Response.json({ error: 'bad cursor' }, { status: 400 }), refused.listener, { giveUpMs: 10_000 }).follow(
      'c',
      '1-0',
    );
    await waitUntil(() => refused.errors.length === 1);
    expect(refused.errors[0]!.message).toContain('400');

    const object = new FakeChannelObject();
    const gapped = recorder();
    new RelayFeed(object.open, gapped.listener, { giveUpMs: 10_000 }).follow('c', '1-0');
    await waitUntil(() => object.requests.length === 1);
    object.send(formatEvent({ id: '1-0', event: 'sse:gap', data: '{"channel":"c","firstId":"3-0"}' }));
    await waitUntil(() => gapped.errors.length === 1);
    expect(gapped.errors[0]!.message).toContain('trimmed');
    expect(object.requests).toHaveLength(1);
  });

  it('a stream that ends before sse:ready fails the join at once', async () => {
    const { errors, listener } = recorder();
    new RelayFeed(async () => new Response(formatRetry(1000)), listener, { giveUpMs: 10_000 }).follow('c', 'head');
    await waitUntil(() => errors.length === 1);
    expect(errors[0]!.message).toContain('before it was ready');
  });

  it('unfollow aborts the request and stops reconnecting', async () => {
    vi.useFakeTimers();
    const object = new FakeChannelObject();
    const { listener } = recorder();
    const feed = new RelayFeed(object.open, listener, { giveUpMs: 60_000 });
    feed.follow('c', '1-0');
    await vi.advanceTimersByTimeAsync(0);
    expect(object.requests).toHaveLength(1);
    feed.unfollow('c');
    // A relay still running would reconnect after its 1-s retry hint.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(object.requests).toHaveLength(1);
  });
});

/** A feed whose channels fail when the test says so, recording what it was asked to follow. */
class FlakyFeed implements LiveFeed {
  readonly follows: [string, string][] = [];
  constructor(readonly listener: FeedListener) {}
  follow(channel: string, from: string): void {
    this.follows.push([channel, from]);
    this.listener.onFollowing(channel, from);
  }
  unfollow(): void {}
  close(): void {}
  fail(channel: string, code: 'BACKEND_ERROR' | 'REQUEST_BUDGET' = 'BACKEND_ERROR'): void {
    this.listener.onError(channel, Object.assign(new Error('dropped'), { code, name: 'BackendError' }) as unknown as BackendError);
  }
}

describe('ResilientFeed', () => {
  afterEach(() => void vi.useRealTimers());

  function make(giveUpMs: number) {
    vi.useFakeTimers();
    let inner!: FlakyFeed;
    const record = recorder();
    const feed = new ResilientFeed((listener) => (inner = new FlakyFeed(listener)), record.listener, { giveUpMs });
    return { feed, inner, ...record };
  }

  it('follows a dropped channel again from the last event it delivered; its listeners are not told', () => {
    const { feed, inner, heads, events, errors } = make(5000);
    feed.follow('c', '1-0');
    inner.listener.onEvents('c', [{ id: '2-0', type: 't', data: 'x', json: false }]);
    inner.fail('c');
    vi.advanceTimersByTime(250);
    expect(inner.follows).toEqual([
      ['c', '1-0'],
      ['c', '2-0'],
    ]);
    expect(events).toHaveLength(1);
    expect(heads).toEqual(['1-0']); // following again is the feed's own business
    expect(errors).toEqual([]);
  });

  it('backs off (250 ms, 500 ms, 1 s…) and tells the listeners once the channel has failed for giveUpMs', () => {
    const { feed, inner, errors } = make(1000);
    feed.follow('c', '1-0');
    const delays: number[] = [];
    while (errors.length === 0) {
      const follows = inner.follows.length;
      inner.fail('c');
      if (errors.length > 0) break;
      let waited = 0;
      while (inner.follows.length === follows) vi.advanceTimersByTime(50), (waited += 50);
      delays.push(waited);
    }
    expect(delays).toEqual([250, 500, 1000]);
    expect(errors).toHaveLength(1);
  });

  it('a channel that stays up again is healthy again: its next drop gets the full giveUpMs', () => {
    const { feed, inner, errors } = make(1000);
    feed.follow('c', '1-0');
    inner.fail('c');
    vi.advanceTimersByTime(250 + 2000); // followed again, then up for 2 s
    inner.fail('c');
    vi.advanceTimersByTime(250);
    expect(inner.follows).toHaveLength(3);
    expect(errors).toEqual([]);
  });

  it('reports a spent request budget at once', () => {
    const { feed, inner, errors } = make(5000);
    feed.follow('c', '1-0');
    inner.fail('c', 'REQUEST_BUDGET');
    expect(errors).toHaveLength(1);
  });

  it('does not follow again a channel that was unfollowed meanwhile', () => {
    const { feed, inner } = make(5000);
    feed.follow('c', '1-0');
    inner.fail('c');
    feed.unfollow('c');
    vi.advanceTimersByTime(10_000);
    expect(inner.follows).toHaveLength(1);
  });
});

describe('Keeper', () => {
  /** A handler whose answers the test releases one by one, each body recording its cancellation. */
  function slowHandler() {
    const pending: (() => void)[] = [];
    const cancelled: boolean[] = [];
    const handler = Object.assign(
      (_request: Request) =>
        new Promise<Response>((resolve) => {
          const index = cancelled.push(false) - 1;
          const body = new ReadableStream<Uint8Array>({ cancel: () => void (cancelled[index] = true) });
          pending.push(() => resolve(new Response(body)));
        }),
      { stats: () => ({}) as never },
    );
    return { handler, pending, cancelled };
  }

  it('a release while the keeper is still opening cancels the stream it then gets: no keeper is left holding the reader', async () => {
    const { handler, pending, cancelled } = slowHandler();
    const keeper = new Keeper(handler, 'https://edge-sse.keeper/?channel=c', () => false);
    const held = keeper.hold();
    keeper.release();
    pending.shift()!();
    await held;
    await waitUntil(() => cancelled[0] === true);
  });

  it('a hold after such a release opens a keeper of its own, and the next release lets it go', async () => {
    const { handler, pending, cancelled } = slowHandler();
    const keeper = new Keeper(handler, 'https://edge-sse.keeper/?channel=c', () => false);
    const first = keeper.hold();
    keeper.release();
    const second = keeper.hold();
    for (const answer of pending.splice(0)) answer();
    await Promise.all([first, second]);
    await waitUntil(() => cancelled[0] === true);
    expect(cancelled[1]).toBe(false);
    keeper.release();
    await waitUntil(() => cancelled[1] === true);
  });
});
