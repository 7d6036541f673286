/**
 * Type tests: `tsc --noEmit` (npm run typecheck) checks them, every `@ts-expect-error` must be an
 * error; vitest runs the file so a typo in it still fails the suite.
 */
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { type EventMeta, type Unsubscribe, subscribe } from '../src/client/index.js';
import { createSSE, memoryBackend } from '../src/index.js';
import type { EventsOf, SSE } from '../src/publish/sse.js';

type AppEvents = {
  'order.updated': { id: string; total: number };
  note: string;
};

const backend = memoryBackend();

describe('createSSE<Events>() types sendEvent', () => {
  it('accepts known names with their payloads', () => {
    const sse = createSSE<AppEvents>({ backend });
    expectTypeOf(sse).toEqualTypeOf<SSE<AppEvents>>();
    expectTypeOf(sse.sendEvent<'note'>)
      .parameter(1)
      .toEqualTypeOf<string>();
    expectTypeOf(sse.sendEvent<'order.updated'>)
      .parameter(1)
      .toEqualTypeOf<{ id: string; total: number }>();
    void (() => sse.sendEvent('order.updated', { id: 'a', total: 1 }, { channel: 'orders' }));
    void (() =>
      sse.sendEvents([
        { type: 'note', data: 'hi' },
        { type: 'order.updated', data: { id: 'a', total: 1 } },
      ]));
  });

  it('refuses a wrong name or payload', () => {
    const sse = createSSE<AppEvents>({ backend });
    // @ts-expect-error: no such event
    void (() => sse.sendEvent('order.deleted', { id: 'a', total: 1 }));
    // @ts-expect-error: total is a number
    void (() => sse.sendEvent('order.updated', { id: 'a', total: '1' }));
    // @ts-expect-error: missing total
    void (() => sse.sendEvent('order.updated', { id: 'a' }));
    // @ts-expect-error: note is a string
    void (() => sse.sendEvent('note', { text: 'hi' }));
    // @ts-expect-error: a payload that belongs to another event
    void (() => sse.sendEvents([{ type: 'note', data: { id: 'a', total: 1 } }]));
  });

  it('without generics, any name and any data, as before', () => {
    const sse = createSSE({ backend });
    expectTypeOf(sse).toEqualTypeOf<SSE>();
    expectTypeOf(sse.sendEvent<string>)
      .parameter(1)
      .toBeUnknown();
    void (() => sse.sendEvent('anything', new Map()));
    void (() => sse.sendEvents([{ type: 'x', data: 1, channel: 'c' }]));
  });
});

describe('createSSE({ schemas }) types from the schemas', () => {
  const schemas = {
    'order.updated': z.object({ id: z.string(), total: z.number(), currency: z.string().default('EUR') }),
    note: z.string(),
  };

  it('sendEvent takes schema input; listeners get schema output', () => {
    const sse = createSSE({ backend, schemas });
    void (() => sse.sendEvent('order.updated', { id: 'a', total: 1 })); // currency has a default
    // @ts-expect-error: not in the schemas
    void (() => sse.sendEvent('order.deleted', {}));
    // @ts-expect-error: total is a number
    void (() => sse.sendEvent('order.updated', { id: 'a', total: 'x' }));
    expectTypeOf<EventsOf<typeof sse>>().toEqualTypeOf<{
      'order.updated': { id: string; total: number; currency: string };
      note: string;
    }>();
    expectTypeOf<EventsOf<typeof schemas>>().toEqualTypeOf<EventsOf<typeof sse>>();
  });
});

describe('subscribe types the on handlers from the same definition', () => {
  it('with an event map (or EventsOf<typeof sse>)', () => {
    const sse = createSSE<AppEvents>({ backend });
    const listen = () =>
      subscribe<EventsOf<typeof sse>>('/stream', {
        on: {
          'order.updated'(order, meta) {
            expectTypeOf(order).toEqualTypeOf<{ id: string; total: number }>();
            expectTypeOf(meta).toEqualTypeOf<EventMeta<'order.updated'>>();
          },
          note: (text) => expectTypeOf(text).toBeString(),
        },
      });
    expectTypeOf(listen).returns.toEqualTypeOf<Unsubscribe>();
  });

  it('refuses a wrong name or a handler for the wrong payload', () => {
    void (() =>
      subscribe<AppEvents>('/stream', {
        on: {
          // @ts-expect-error: no such event
          'order.deleted'() {},
        },
      }));
    void (() =>
      subscribe<AppEvents>('/stream', {
        on: {
          // @ts-expect-error: note's data is a string
          note(data: number) {
            return data;
          },
        },
      }));
    void (() =>
      subscribe<AppEvents>('/stream', {
        on: {
          'order.updated'(order) {
            // @ts-expect-error: no such field
            return order.amount;
          },
        },
      }));
  });

  it('with schemas: handlers get their output, and unknown names are refused', () => {
    const schemas = { count: z.string().transform(Number), note: z.string() };
    void (() =>
      subscribe('/stream', {
        schemas,
        on: { count: (value) => expectTypeOf(value).toBeNumber(), note: (text) => expectTypeOf(text).toBeString() },
      }));
    void (() =>
      // @ts-expect-error: no such event (neither overload takes it)
      subscribe('/stream', { schemas, on: { other() {} } }));
  });

  it('untyped: any name, data unknown', () => {
    void (() => subscribe('/stream', { on: { whatever: (data) => expectTypeOf(data).toBeUnknown() } }));
  });
});
