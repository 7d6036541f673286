import type { Backend } from '../backends/contract.js';
import { ValidationError, invalidOption } from '../common/errors.js';
import { type StreamHandler, type StreamHandlerOptions, createStreamHandler } from '../server/handler.js';
import { assertEventType, describe } from '../wire/names.js';
import { type EventInput, type IdempotencyOptions, type PublishOptions, sendEvent, sendEvents } from './publish.js';
import {
  type AnyEvents,
  type EventMap,
  type SchemaInputs,
  type SchemaMap,
  type SchemaOutputs,
  isStandardSchema,
  validateData,
} from './schema.js';

/** `idempotencySeconds` is a default here; an idempotency key names one publish, so it goes with the call. */
export interface SSEOptions extends StreamHandlerOptions, Omit<PublishOptions, 'backend' | 'idempotencyKey'> {}

export interface TypedSSEOptions<Schemas extends SchemaMap> extends SSEOptions {
  /** A Standard Schema per event type: `sendEvent` publishes only what they accept, and their output. */
  schemas: Schemas;
}

/** One event for `sendEvents`, its data typed by its name. */
export type TypedEventInput<Inputs extends EventMap> = {
  [Type in keyof Inputs & string]: { type: Type; data: Inputs[Type]; channel?: string };
}[keyof Inputs & string];

/**
 * `Events` are the payloads listeners receive; `Inputs` what `sendEvent` takes (they differ when
 * a schema transforms its input). Untyped, both are "any name, any data".
 */
export interface SSE<Events extends EventMap = AnyEvents, Inputs extends EventMap = Events> {
  backend: Backend;
  /** `GET` handler: `export const GET = sse.handler`. */
  handler: StreamHandler;
  sendEvent<Type extends keyof Inputs & string>(
    type: Type,
    data: Inputs[Type],
    options?: { channel?: string } & IdempotencyOptions,
  ): Promise<string>;
  sendEvents(events: readonly TypedEventInput<Inputs>[], options?: IdempotencyOptions): Promise<string[]>;
  /** Type-only: `EventsOf<typeof sse>` names the payloads for `subscribe<…>()` on the client. */
  readonly '~events'?: Events;
}

/** The event map of an `SSE`, for typing the client: `subscribe<EventsOf<typeof sse>>(…)`. */
// biome-ignore lint/suspicious/noExplicitAny: matches an SSE whatever its input payloads
export type EventsOf<Source> = Source extends SSE<infer Events, any> ? Events : Source extends SchemaMap ? SchemaOutputs<Source> : never;

/** One backend and shared defaults for streaming and publishing: Flask-SSE's blueprint and `send_event`. */
export function createSSE<const Schemas extends SchemaMap>(
  options: TypedSSEOptions<Schemas>,
): SSE<SchemaOutputs<Schemas>, SchemaInputs<Schemas>>;
export function createSSE<Events extends EventMap = AnyEvents>(options: SSEOptions): SSE<Events>;
export function createSSE(options: SSEOptions & { schemas?: SchemaMap }): SSE {
  const handler = createStreamHandler(options);
  const publishing: PublishOptions = {
    backend: options.backend,
    maxEventBytes: options.maxEventBytes,
    maxLength: options.maxLength,
    ttlSeconds: options.ttlSeconds,
    idempotencySeconds: options.idempotencySeconds,
  };
  const withCall = ({ channel, idempotencyKey, idempotencySeconds }: { channel?: string } & IdempotencyOptions = {}) => ({
    ...publishing,
    channel,
    idempotencyKey,
    idempotencySeconds: idempotencySeconds ?? publishing.idempotencySeconds,
  });
  const validate = options.schemas ? schemaValidator(options.schemas) : undefined;
  return {
    backend: options.backend,
    handler,
    sendEvent: validate
      ? async (type, data, call) => sendEvent(type, await validate(type, data), withCall(call))
      : (type, data, call) => sendEvent(type, data, withCall(call)),
    sendEvents: validate
      ? async (events, call) => sendEvents(await validateAll(events, validate), withCall(call))
      : (events, call) => sendEvents(events, withCall(call)),
  };
}

type Validate = (type: string, data: unknown) => Promise<unknown>;

function schemaValidator(schemas: SchemaMap): Validate {
  const known = Object.keys(schemas);
  known.forEach(assertEventType);
  const bad = known.find((type) => !isStandardSchema(schemas[type]));
  if (bad !== undefined) {
    throw invalidOption(`schemas.${bad} is not a Standard Schema (zod 4, valibot, arktype…): it has no "~standard" validate`);
  }
  return async (type, data) => {
    const schema = Object.hasOwn(schemas, type) ? schemas[type] : undefined;
    if (!schema) {
      throw new ValidationError(
        'INVALID_EVENT_TYPE',
        `Invalid event type ${describe(type)}: it has no schema; the schemas name ${known.map((name) => `"${name}"`).join(', ')}`,
      );
    }
    return validateData(schema, type, data);
  };
}

/** Validates every event before any is published, as `sendEvents` does with its own checks. */
async function validateAll(events: readonly EventInput[], validate: Validate): Promise<readonly EventInput[]> {
  if (!Array.isArray(events)) return events; // sendEvents says what is wrong
  const checked: EventInput[] = [];
  for (const event of events) {
    const valid = typeof event === 'object' && event !== null;
    checked.push(valid ? { ...event, data: await validate(event.type, event.data) } : event);
  }
  return checked;
}
