import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError, createSSE, memoryBackend } from '../src/index.js';
import { SchemaValidationError, type StandardSchemaV1, validateData } from '../src/publish/schema.js';

const schemas = {
  'order.updated': z.object({ id: z.string(), total: z.number().nonnegative(), items: z.array(z.object({ sku: z.string() })) }),
  note: z.string().min(1),
  stamped: z.object({ at: z.number().default(42) }),
};

async function stored(backend: ReturnType<typeof memoryBackend>, channel = 'sse') {
  const [read] = await backend.read([{ channel, after: '0-0' }], 100);
  return read!.events.map(({ type, data, json }) => ({ type, data, json }));
}

async function refusal(promise: Promise<unknown>): Promise<ValidationError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ValidationError);
  return error as ValidationError;
}

/** A hand-written Standard Schema, as any validator library would provide: no zod involved. */
function evenNumber(): StandardSchemaV1<number> {
  return {
    '~standard': {
      version: 1,
      vendor: 'test',
      validate: (value) => (typeof value === 'number' && value % 2 === 0 ? { value } : { issues: [{ message: 'must be even' }] }),
    },
  };
}

describe('createSSE({ schemas }): validation before publishing', () => {
  it('publishes data the schema accepts, as the schema outputs it', async () => {
    const backend = memoryBackend();
    const sse = createSSE({ backend, schemas });
    await sse.sendEvent('order.updated', { id: 'o1', total: 3, items: [{ sku: 'a' }] });
    await sse.sendEvent('note', 'hello');
    await sse.sendEvent('stamped', {});
    expect(await stored(backend)).toEqual([
      { type: 'order.updated', data: '{"id":"o1","total":3,"items":[{"sku":"a"}]}', json: true },
      { type: 'note', data: 'hello', json: false },
      { type: 'stamped', data: '{"at":42}', json: true },
    ]);
  });

  it('refuses invalid data with a ValidationError naming the event and the first issue; nothing is published', async () => {
    const backend = memoryBackend();
    const sse = createSSE({ backend, schemas });
    const bad = { id: 'o1', total: 3, items: [{ sku: 7 }] } as unknown as z.input<(typeof schemas)['order.updated']>;
    const error = await refusal(sse.sendEvent('order.updated', bad));
    expect(error).toBeInstanceOf(SchemaValidationError);
    expect(error.code).toBe('INVALID_DATA');
    expect(error.message).toMatch(/^Event "order\.updated" has invalid data at items\.0\.sku: /);
    expect((error as SchemaValidationError).issues.length).toBeGreaterThan(0);
    expect(await stored(backend)).toEqual([]);
  });

  it('an issue without a path is reported without one', async () => {
    const sse = createSSE({ backend: memoryBackend(), schemas });
    const error = await refusal(sse.sendEvent('note', ''));
    expect(error.message).toMatch(/^Event "note" has invalid data: \S/);
  });

  it('sendEvents validates every event first: one bad event publishes none', async () => {
    const backend = memoryBackend();
    const sse = createSSE({ backend, schemas });
    const error = await refusal(
      sse.sendEvents([
        { type: 'note', data: 'fine' },
        { type: 'order.updated', data: { id: 'o2', total: -1, items: [] } },
      ]),
    );
    expect(error.message).toMatch(/^Event "order\.updated" has invalid data at total: /);
    expect(await stored(backend)).toEqual([]);
    await sse.sendEvents([
      { type: 'note', data: 'a' },
      { type: 'stamped', data: { at: 1 }, channel: 'other' },
    ]);
    expect(await stored(backend)).toEqual([{ type: 'note', data: 'a', json: false }]);
    expect(await stored(backend, 'other')).toEqual([{ type: 'stamped', data: '{"at":1}', json: true }]);
  });

  it('refuses an event type that has no schema (a caller that bypassed the types)', async () => {
    const backend = memoryBackend();
    const sse = createSSE({ backend, schemas });
    const error = await refusal(sse.sendEvent('nope' as 'note', 'x'));
    expect(error.code).toBe('INVALID_EVENT_TYPE');
    expect(error.message).toContain('"nope"');
    expect(error.message).toContain('"order.updated", "note", "stamped"');
    // Inherited names such as toString are not schemas either.
    expect((await refusal(sse.sendEvent('toString' as 'note', 'x'))).code).toBe('INVALID_EVENT_TYPE');
    expect(await stored(backend)).toEqual([]);
  });

  it('accepts any Standard Schema, sync or async, and still applies the library checks afterwards', async () => {
    const backend = memoryBackend();
    const asyncString: StandardSchemaV1<string> = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: async (value) =>
          typeof value === 'string' ? { value } : { issues: [{ message: 'not a string', path: [{ key: 'x' }] }] },
      },
    };
    const sse = createSSE({ backend, schemas: { even: evenNumber(), text: asyncString }, maxEventBytes: 8 });
    await sse.sendEvent('even', 4);
    expect((await refusal(sse.sendEvent('even', 3))).message).toBe('Event "even" has invalid data: must be even');
    expect((await refusal(sse.sendEvent('text', 5 as unknown as string))).message).toBe('Event "text" has invalid data at x: not a string');
    expect((await refusal(sse.sendEvent('text', 'far too long'))).code).toBe('EVENT_TOO_LARGE');
    expect(await stored(backend)).toEqual([{ type: 'even', data: '4', json: true }]);
  });

  it('refuses schemas that are not Standard Schemas, and reserved or malformed event names, at creation', () => {
    const backend = memoryBackend();
    expect(() => createSSE({ backend, schemas: { a: { parse() {} } as unknown as StandardSchemaV1 } })).toThrow(
      /schemas\.a is not a Standard Schema/,
    );
    expect(() => createSSE({ backend, schemas: { 'sse:ready': evenNumber() } })).toThrow(ValidationError);
  });

  it('createSSE without schemas publishes anything, as before', async () => {
    const backend = memoryBackend();
    const sse = createSSE({ backend });
    await sse.sendEvent('anything', { a: 1 });
    await sse.sendEvents([{ type: 'other', data: 'x' }]);
    expect(await stored(backend)).toEqual([
      { type: 'anything', data: '{"a":1}', json: true },
      { type: 'other', data: 'x', json: false },
    ]);
  });
});

describe('validateData', () => {
  it('is synchronous for a synchronous schema', () => {
    expect(validateData(evenNumber(), 'even', 2)).toBe(2);
    expect(() => validateData(evenNumber(), 'even', 1)).toThrow(SchemaValidationError);
  });

  it('names symbol and numeric path segments', () => {
    const schema: StandardSchemaV1 = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: () => ({ issues: [{ message: 'bad', path: ['list', 3, { key: Symbol('s') }] }] }),
      },
    };
    expect(() => validateData(schema, 'x', null)).toThrow('Event "x" has invalid data at list.3.Symbol(s): bad');
  });
});
