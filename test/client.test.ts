import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import {
  type ConnectionState,
  type EventMeta,
  type Gap,
  SchemaValidationError,
  ValidationError,
  defaultReconnect,
  subscribe,
} from '../src/client/index.js';
type Listener = (event: MessageEvent) => void;

/** An EventSource whose network the test plays: open it, send it events, make it fail. */
class FakeEventSource {
  static readonly instances: FakeEventSource[] = [];
  static get last(): FakeEventSource {
    const last = FakeEventSource.instances.at(-1);
    if (!last) throw new Error('no EventSource was created');
    return last;
  }

  readyState = 0;
  closed = false;
  private listeners = new Map<string, Listener[]>();

  constructor(
    readonly url: string,
    readonly init?: { withCredentials?: boolean },
  ) {
    FakeEventSource.instances.push(this);
  }

  addEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }

  close(): void {
    this.closed = true;
    this.readyState = 2;
  }

  open(): void {
    this.readyState = 1;
    this.dispatch('open', new MessageEvent('open'));
  }

  emit(type: string, data: string, lastEventId: string): void {
    this.dispatch(type, new MessageEvent(type, { data, lastEventId }));
  }

  /** `retrying`: EventSource will reconnect by itself; otherwise it gave up (an error status). */
  fail({ retrying }: { retrying: boolean }): void {
    this.readyState = retrying ? 0 : 2;
    this.dispatch('error', new MessageEvent('error'));
  }

  listensTo(type: string): boolean {
    return this.listeners.has(type);
  }

  private dispatch(type: string, event: MessageEvent): void {
    if (this.closed && type !== 'error') return;
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
}

afterEach(() => {
  FakeEventSource.instances.length = 0;
  vi.useRealTimers();
});

function recorder() {
  const states: ConnectionState[] = [];
  const events: { data: unknown; meta: EventMeta }[] = [];
  const handler = (data: unknown, meta: EventMeta) => events.push({ data, meta });
  return { states, events, handler, onStateChange: (state: ConnectionState) => states.push(state) };
}

describe('subscribe: decoding', () => {
  it('parses data sent as JSON (id ending ;json) and keeps strings as strings', () => {
    const { events, handler } = recorder();
    subscribe('/stream', { EventSource: FakeEventSource, on: { doc: handler, text: handler } });
    const es = FakeEventSource.last;
    es.open();
    es.emit('doc', '{"a":[1,"two"]}', '5-0;json');
    es.emit('text', '{"not":"parsed"}', '6-0');
    es.emit('doc', '"a JSON string"', '7-0;json');
    expect(events).toEqual([
      { data: { a: [1, 'two'] }, meta: { type: 'doc', channel: 'sse', id: '5-0', cursor: '5-0;json' } },
      { data: '{"not":"parsed"}', meta: { type: 'text', channel: 'sse', id: '6-0', cursor: '6-0' } },
      { data: 'a JSON string', meta: { type: 'doc', channel: 'sse', id: '7-0', cursor: '7-0;json' } },
    ]);
  });

  it('listens only to the types it has handlers for (plus its control events)', () => {
    subscribe('/stream', { EventSource: FakeEventSource, on: { a() {}, message() {} } });
    const es = FakeEventSource.last;
    for (const type of ['a', 'message', 'sse:gap', 'sse:ready', 'open', 'error']) expect(es.listensTo(type)).toBe(true);
    expect(es.listensTo('b')).toBe(false);
  });

  it('tells the channel of each event from the cursor, channels sorted as the server sorts them', () => {
    const { events, handler } = recorder();
    subscribe('/stream', { EventSource: FakeEventSource, channels: ['news', 'chat'], on: { m: handler } });
    const es = FakeEventSource.last;
    expect(es.url).toBe('/stream?channel=news&channel=chat');
    es.emit('sse:ready', '{"channels":["chat","news"]}', '1-0,2-0;json');
    es.emit('m', 'x', '1-0,3-0');
    es.emit('m', 'y', '4-0,3-0');
    expect(events.map(({ meta }) => [meta.channel, meta.id])).toEqual([
      ['news', '3-0'],
      ['chat', '4-0'],
    ]);
  });

  it('takes the channels from the URL when none are given', () => {
    const { events, handler } = recorder();
    subscribe('/stream?channel=b&channel=a', { EventSource: FakeEventSource, on: { m: handler } });
    expect(FakeEventSource.last.url).toBe('/stream?channel=b&channel=a');
    FakeEventSource.last.emit('m', 'x', '1-0,2-0');
    expect(events[0]!.meta.channel).toBe('b');
  });

  it('drops an event the cursor has already passed: each event is delivered once', () => {
    const { events, handler } = recorder();
    subscribe('/stream', { EventSource: FakeEventSource, on: { m: handler } });
    const es = FakeEventSource.last;
    es.emit('m', 'one', '10-0');
    es.emit('m', 'one again', '10-0');
    es.emit('m', 'older', '9-5');
    es.emit('m', 'two', '10-1');
    expect(events.map(({ data }) => data)).toEqual(['one', 'two']);
  });

  it('reports data marked JSON that is not JSON to onError, skipping the event', () => {
    const { events, handler } = recorder();
    const errors: [Error, EventMeta][] = [];
    subscribe('/stream', { EventSource: FakeEventSource, on: { m: handler }, onError: (error, meta) => errors.push([error, meta]) });
    FakeEventSource.last.emit('m', '{oops', '1-0;json');
    FakeEventSource.last.emit('m', '{}', '2-0;json');
    expect(events).toHaveLength(1);
    expect(errors[0]![0]).toBeInstanceOf(ValidationError);
    expect(errors[0]![0].message).toBe('Event "m" is marked JSON but its data is not JSON');
    expect(errors[0]![1]).toMatchObject({ type: 'm', id: '1-0' });
  });

  it('without onError, a decoding error is thrown from the listener (an uncaught error in a browser)', () => {
    subscribe('/stream', { EventSource: FakeEventSource, on: { m() {} } });
    expect(() => FakeEventSource.last.emit('m', '{oops', '1-0;json')).toThrow(ValidationError);
  });
});

describe('subscribe: gaps and state', () => {
  it('reports sse:gap with its channel and first id', () => {
    const gaps: [Gap, EventMeta][] = [];
    subscribe('/stream', { EventSource: FakeEventSource, channels: 'news', onGap: (gap, meta) => gaps.push([gap, meta]) });
    FakeEventSource.last.emit('sse:gap', '{"channel":"news","firstId":"20-0"}', '10-0;json');
    expect(gaps).toEqual([
      [
        { channel: 'news', firstId: '20-0' },
        { type: 'sse:gap', channel: 'news', id: '20-0', cursor: '10-0;json' },
      ],
    ]);
  });

  it('takes the position a gap states, even a lower one: a restarted store issues lower ids', () => {
    const received: EventMeta[] = [];
    subscribe('/stream', {
      EventSource: FakeEventSource,
      channels: ['a', 'b'],
      lastEventId: '9-0,99999999999999-0',
      on: { n: (_, meta) => received.push(meta) },
    });
    const es = FakeEventSource.last;
    es.emit('sse:gap', '{"channel":"b","firstId":null}', '9-0,0-0;json');
    es.emit('n', 'x', '9-0,5-0');
    expect(received).toEqual([{ type: 'n', channel: 'b', id: '5-0', cursor: '9-0,5-0' }]);
  });

  it('goes connecting → open → resuming (EventSource retrying) → open → closed on unsubscribe', () => {
    const { states, onStateChange } = recorder();
    const unsubscribe = subscribe('/stream', { EventSource: FakeEventSource, onStateChange });
    const es = FakeEventSource.last;
    es.open();
    es.fail({ retrying: true });
    es.open();
    unsubscribe();
    unsubscribe();
    expect(states).toEqual(['connecting', 'open', 'resuming', 'open', 'closed']);
    expect(es.closed).toBe(true);
    expect(FakeEventSource.instances).toHaveLength(1);
  });

  it('when EventSource gives up, recreates it with ?lastEventId= from the cursor after the reconnect delay', () => {
    vi.useFakeTimers();
    const { states, events, handler, onStateChange } = recorder();
    const delays: number[] = [];
    subscribe('/stream?channel=a', {
      EventSource: FakeEventSource,
      on: { m: handler },
      onStateChange,
      reconnect: (attempt) => (delays.push(attempt), 500),
    });
    const first = FakeEventSource.last;
    first.open();
    first.emit('sse:ready', '{"channels":["a"]}', '3-0;json');
    first.emit('m', 'x', '4-0');
    first.fail({ retrying: false });
    expect(first.closed).toBe(true);
    expect(states.at(-1)).toBe('resuming');
    vi.advanceTimersByTime(499);
    expect(FakeEventSource.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    const second = FakeEventSource.last;
    expect(second.url).toBe('/stream?channel=a&lastEventId=4-0');
    second.fail({ retrying: false });
    vi.advanceTimersByTime(500);
    FakeEventSource.last.open();
    FakeEventSource.last.fail({ retrying: false });
    expect(delays).toEqual([1, 2, 1]); // attempts count from the last successful open
    expect(states).toEqual(['connecting', 'open', 'resuming', 'open', 'resuming']);
    expect(events).toHaveLength(1);
  });

  it('stays closed when the reconnect policy says false, or is false', () => {
    const { states, onStateChange } = recorder();
    subscribe('/stream', { EventSource: FakeEventSource, onStateChange, reconnect: false });
    FakeEventSource.last.fail({ retrying: false });
    expect(states).toEqual(['connecting', 'closed']);
    expect(FakeEventSource.instances).toHaveLength(1);
  });

  it('ignores events from an EventSource it has replaced', () => {
    vi.useFakeTimers();
    const { events, handler } = recorder();
    subscribe('/stream', { EventSource: FakeEventSource, on: { m: handler }, reconnect: () => 0 });
    const first = FakeEventSource.last;
    first.fail({ retrying: false });
    first.closed = false; // a misbehaving implementation that still dispatches after close()
    first.emit('m', 'stale', '1-0');
    expect(events).toEqual([]);
  });

  it('starts from a stored cursor with lastEventId, as resuming', () => {
    const { states, onStateChange } = recorder();
    subscribe('/stream?lastEventId=old', { EventSource: FakeEventSource, lastEventId: '7-0', onStateChange, withCredentials: true });
    expect(FakeEventSource.last.url).toBe('/stream?lastEventId=7-0');
    expect(FakeEventSource.last.init).toEqual({ withCredentials: true });
    expect(states).toEqual(['resuming']);
  });

  it('an AbortSignal unsubscribes; an aborted one never connects', () => {
    const { states, onStateChange } = recorder();
    const controller = new AbortController();
    subscribe('/stream', { EventSource: FakeEventSource, signal: controller.signal, onStateChange });
    controller.abort();
    expect(FakeEventSource.last.closed).toBe(true);
    expect(states).toEqual(['connecting', 'closed']);
    subscribe('/stream', { EventSource: FakeEventSource, signal: controller.signal });
    expect(FakeEventSource.instances).toHaveLength(1);
  });

  it('says what to do when there is no EventSource', () => {
    const saved = globalThis.EventSource;
    // @ts-expect-error removing it for the test
    delete globalThis.EventSource;
    try {
      expect(() => subscribe('/stream')).toThrow(/pass one: subscribe\(url, \{ EventSource \}\)/);
    } finally {
      if (saved) globalThis.EventSource = saved;
    }
  });

  it('defaultReconnect: about 1 s doubling to 30 s, then gives up after 10 attempts', () => {
    for (let attempt = 1; attempt <= 10; attempt++) {
      const full = Math.min(30_000, 1000 * 2 ** (attempt - 1));
      const delay = defaultReconnect(attempt) as number;
      expect(delay).toBeGreaterThanOrEqual(full * 0.75);
      expect(delay).toBeLessThanOrEqual(full);
    }
    expect(defaultReconnect(11)).toBe(false);
  });
});

describe('subscribe: validation on receipt', () => {
  const schemas = {
    order: z.object({ id: z.string(), total: z.number() }),
    note: z.string().transform((text) => text.toUpperCase()),
  };

  it('gives handlers the schema output and reports refused data as SchemaValidationError', () => {
    const received: unknown[] = [];
    const errors: Error[] = [];
    subscribe('/stream', {
      EventSource: FakeEventSource,
      schemas,
      on: { order: (order) => received.push(order.total), note: (note) => received.push(note) },
      onError: (error) => errors.push(error),
    });
    const es = FakeEventSource.last;
    es.emit('order', '{"id":"a","total":2}', '1-0;json');
    es.emit('order', '{"id":"b","total":"3"}', '2-0;json');
    es.emit('note', 'hi', '3-0');
    expect(received).toEqual([2, 'HI']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SchemaValidationError);
    expect(errors[0]!.message).toMatch(/^Event "order" has invalid data at total: /);
  });

  it('keeps arrival order when a schema is asynchronous', async () => {
    const received: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = {
      '~standard': { version: 1 as const, vendor: 'test', validate: async (value: unknown) => (await gate, { value: value as string }) },
    };
    subscribe('/stream', {
      EventSource: FakeEventSource,
      schemas: { slow, fast: z.string() },
      on: { slow: (data) => received.push(`slow ${data}`), fast: (data) => received.push(`fast ${data}`) },
    });
    const es = FakeEventSource.last;
    es.emit('fast', '1', '1-0');
    es.emit('slow', '2', '2-0');
    es.emit('fast', '3', '3-0');
    es.emit('sse:gap', '{"channel":"sse","firstId":null}', '3-0;json');
    expect(received).toEqual(['fast 1']);
    release();
    await vi.waitFor(() => expect(received).toEqual(['fast 1', 'slow 2', 'fast 3']));
    es.emit('fast', '4', '4-0');
    await vi.waitFor(() => expect(received).toEqual(['fast 1', 'slow 2', 'fast 3', 'fast 4']));
  });

  it('delivers nothing after unsubscribe, even what was being validated', async () => {
    const received: unknown[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = { '~standard': { version: 1 as const, vendor: 'test', validate: async (value: unknown) => (await gate, { value }) } };
    const unsubscribe = subscribe('/stream', {
      EventSource: FakeEventSource,
      schemas: { slow },
      on: { slow: (data) => received.push(data) },
    });
    FakeEventSource.last.emit('slow', 'x', '1-0');
    unsubscribe();
    release();
    // Validation and delivery are promises only: once a macrotask runs, all of them have settled.
    await new Promise((resolve) => setImmediate(resolve));
    expect(received).toEqual([]);
  });
});
