import type { Backend, Idempotency, NewEvent, Retention } from '../backends/contract.js';
import { ValidationError, invalidOption } from '../common/errors.js';
import { DEFAULT_CHANNEL, LONE_SURROGATE, assertChannel, assertEventType, describe } from '../wire/names.js';
import { wholeNumber } from '../common/options.js';

export const DEFAULT_MAX_EVENT_BYTES = 64 * 1024;
const DEFAULT_IDEMPOTENCY_SECONDS = 86_400;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 256;

export interface IdempotencyOptions {
  /**
   * Names this publish, so that retrying it publishes once: if a publish with this key was stored
   * within `idempotencySeconds`, nothing is written and its ids are returned. For retries after a
   * timeout, when the first attempt may have been stored. 1–256 printable ASCII characters.
   */
  idempotencyKey?: string;
  /** Seconds the key is remembered after its publish (default 86400). */
  idempotencySeconds?: number;
}

export interface PublishOptions extends IdempotencyOptions {
  backend: Backend;
  /** Refuse events whose data is larger than this many UTF-8 bytes (default 65536). */
  maxEventBytes?: number;
  /** Events kept per channel for resuming clients (default 1000, approximate on Redis). */
  maxLength?: number;
  /** Seconds a channel is kept after its last event (default 86400). */
  ttlSeconds?: number;
  /** Abandons the request to the backend (the event may or may not have been stored). */
  signal?: AbortSignal;
}

export interface SendEventOptions extends PublishOptions {
  /** Default `sse`, as in Flask-SSE. */
  channel?: string;
}

export interface EventInput {
  type: string;
  /** A string is sent verbatim; anything else as JSON. */
  data: unknown;
  channel?: string;
}

/** Publishes one event; resolves to its id once the backend has stored it. */
export async function sendEvent(type: string, data: unknown, options: SendEventOptions): Promise<string> {
  const [id] = await sendEvents([{ type, data, channel: options.channel }], options);
  return id as string;
}

/**
 * Publishes several events in one backend round trip: all are validated before any is sent, and
 * on one Redis they are stored all or none.
 *
 * Calls need not wait for each other: on one backend they are stored in call order, and on the
 * Redis backends the calls made while one is in flight go together in the next request.
 */
export async function sendEvents(events: readonly EventInput[], options: PublishOptions): Promise<string[]> {
  return (await publishEvents(events, options)).ids;
}

export interface Published {
  ids: string[];
  /** The idempotency key had been used: nothing was written, and `ids` are that publish's. */
  repeated: boolean;
}

export async function publishEvents(events: readonly EventInput[], options: PublishOptions): Promise<Published> {
  const { backend, maxEventBytes, retention, idempotency } = resolvePublishOptions(options);
  if (!Array.isArray(events)) throw new ValidationError('INVALID_DATA', 'sendEvents takes an array of { type, data, channel? }');
  const prepared = events.map((event) => prepareEvent(event, maxEventBytes));
  if (prepared.length === 0) return { ids: [], repeated: false };
  let repeated = false;
  const ids = await backend.append(prepared, retention, {
    signal: options.signal,
    idempotency: idempotency && { ...idempotency, onRepeat: () => (repeated = true) },
  });
  if (repeated && ids.length !== prepared.length) {
    throw invalidOption(
      `idempotencyKey ${describe(idempotency?.key)} was used by a publish of ${ids.length} event(s), and this one has ` +
        `${prepared.length}: give each publish its own key (nothing was published)`,
    );
  }
  return { ids, repeated };
}

function resolvePublishOptions(options: PublishOptions) {
  if (!options || typeof options.backend?.append !== 'function') {
    throw invalidOption('Publishing needs a backend, e.g. { backend: memoryBackend() }');
  }
  const retention: Retention = {
    maxLength: wholeNumber('maxLength', options.maxLength, 1000, 1),
    ttlSeconds: wholeNumber('ttlSeconds', options.ttlSeconds, 86_400, 1),
  };
  return {
    backend: options.backend,
    maxEventBytes: wholeNumber('maxEventBytes', options.maxEventBytes, DEFAULT_MAX_EVENT_BYTES, 1),
    retention,
    idempotency: resolveIdempotency(options),
  };
}

const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

function resolveIdempotency({ idempotencyKey: key, idempotencySeconds }: IdempotencyOptions): Idempotency | undefined {
  const ttlSeconds = wholeNumber('idempotencySeconds', idempotencySeconds, DEFAULT_IDEMPOTENCY_SECONDS, 1);
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || key.length > MAX_IDEMPOTENCY_KEY_LENGTH || !PRINTABLE_ASCII.test(key)) {
    throw invalidOption(
      `Option idempotencyKey must be 1–${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters (space to "~"), ` +
        `such as a request or message id; got ${describe(key)}`,
    );
  }
  return { key, ttlSeconds };
}

export function prepareEvent(event: EventInput, maxEventBytes: number): NewEvent {
  if (typeof event !== 'object' || event === null) {
    throw new ValidationError('INVALID_DATA', 'Each event must be an object { type, data, channel? }');
  }
  const type = assertEventType(event.type);
  const channel = assertChannel(event.channel === undefined ? DEFAULT_CHANNEL : event.channel);
  const json = typeof event.data !== 'string';
  const data = json ? toJson(event.data, type) : assertWellFormed(event.data as string, type);
  // A UTF-16 unit is at most 3 UTF-8 bytes: most payloads need no counting.
  const bytes = data.length * 3 <= maxEventBytes ? 0 : utf8Length(data);
  if (bytes > maxEventBytes) {
    throw new ValidationError(
      'EVENT_TOO_LARGE',
      `Event "${type}" is ${bytes} bytes; the limit is ${maxEventBytes} (option maxEventBytes). Send a reference instead of the payload`,
    );
  }
  return { channel, type, data, json };
}

function toJson(value: unknown, type: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (error) {
    throw new ValidationError(
      'INVALID_DATA',
      `Event "${type}" has data JSON cannot serialise (${(error as Error).message}); send plain data without cycles or BigInt`,
      { cause: error },
    );
  }
  if (text === undefined) {
    throw new ValidationError(
      'INVALID_DATA',
      `Event "${type}" has ${typeof value} data, which JSON cannot represent; send a string, number, boolean, null, array or object`,
    );
  }
  return text;
}

function assertWellFormed(data: string, type: string): string {
  if (LONE_SURROGATE.test(data)) {
    throw new ValidationError(
      'INVALID_DATA',
      `Event "${type}" has string data with a lone UTF-16 surrogate, which UTF-8 cannot carry; fix the string's encoding`,
    );
  }
  return data;
}

function utf8Length(text: string): number {
  let bytes = text.length;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code >= 0xd800 && code <= 0xdbff) {
      bytes += 2;
      index++;
    } else if (code >= 0x800) bytes += 2;
    else if (code >= 0x80) bytes += 1;
  }
  return bytes;
}
