import { ValidationError } from '../common/errors.js';
import { type AnyEvents, type EventMap, type SchemaMap, validateData } from '../publish/schema.js';
import { CursorTracker, decodeData } from './cursor.js';
import { orderedDelivery } from './ordered.js';
import { defaultReconnect } from './reconnect.js';
import type { ConnectionState, EventMeta, EventSourceLike, Gap, SchemaSubscribeOptions, SubscribeOptions, Unsubscribe } from './types.js';
import { cursorChannels, streamUrl } from './url.js';

const CLOSED = 2;

type Options = SubscribeOptions & { schemas?: SchemaMap };

/**
 * Listens to an edge-sse stream with EventSource: decodes JSON data, reports gaps and connection
 * state, and recreates the EventSource from its cursor when EventSource gives up.
 */
export function subscribe<const Schemas extends SchemaMap>(url: string, options: SchemaSubscribeOptions<Schemas>): Unsubscribe;
export function subscribe<Events extends EventMap = AnyEvents>(url: string, options?: SubscribeOptions<Events>): Unsubscribe;
export function subscribe(url: string, options: Options = {}): Unsubscribe {
  const EventSourceImpl = options.EventSource ?? globalThis.EventSource;
  if (typeof EventSourceImpl !== 'function') {
    throw new TypeError('edge-sse/client: no EventSource here; pass one: subscribe(url, { EventSource })');
  }
  const channels = typeof options.channels === 'string' ? [options.channels] : options.channels;
  const tracker = new CursorTracker(cursorChannels(url, channels), options.lastEventId);
  const deliver = orderedDelivery();
  const reconnect = options.reconnect === false ? () => false as const : (options.reconnect ?? defaultReconnect);
  let source: EventSourceLike | undefined;
  let state: ConnectionState | undefined;
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  const setState = (next: ConnectionState) => {
    if (next === state) return;
    state = next;
    options.onStateChange?.(next);
  };

  const connect = () => {
    setState(tracker.cursor ? 'resuming' : 'connecting');
    const init = options.withCredentials ? { withCredentials: true } : undefined;
    const es = (source = new EventSourceImpl(streamUrl(url, channels, tracker.cursor), init));
    const current = (listener: (event: MessageEvent) => void) => (event: MessageEvent) => {
      if (es === source) listener(event);
    };
    es.addEventListener(
      'open',
      current(() => ((failures = 0), setState('open'))),
    );
    es.addEventListener(
      'error',
      current(() => onFailure(es)),
    );
    es.addEventListener(
      'sse:ready',
      current((event) => tracker.reset(event.lastEventId)),
    );
    es.addEventListener('sse:gap', current(onGap));
    for (const type of Object.keys(options.on ?? {}))
      es.addEventListener(
        type,
        current((event) => onEvent(type, event)),
      );
  };

  /** EventSource retries by itself unless it is CLOSED (an error status, a wrong content type). */
  const onFailure = (es: EventSourceLike) => {
    if (es.readyState !== CLOSED) return setState('resuming');
    es.close();
    source = undefined;
    const delay = reconnect(++failures);
    if (delay === false) return close();
    setState(tracker.cursor ? 'resuming' : 'connecting');
    timer = setTimeout(connect, delay);
  };

  const onEvent = (type: string, event: MessageEvent) => {
    const cursor = event.lastEventId;
    const position = tracker.advance(cursor);
    if (!position) return;
    const meta: EventMeta = { type, ...position, cursor };
    const handler = options.on?.[type];
    const schema = options.schemas && Object.hasOwn(options.schemas, type) ? options.schemas[type] : undefined;
    deliver(
      () => {
        const data = decode(type, event.data as string, cursor);
        return schema ? validateData(schema, type, data) : data;
      },
      (data) => closed || handler?.(data, meta),
      (error) => fail(error, meta),
    );
  };

  const onGap = (event: MessageEvent) => {
    tracker.reset(event.lastEventId);
    deliver(
      () => decode('sse:gap', event.data as string, event.lastEventId) as Gap,
      (value) => {
        const gap = value as Gap;
        const meta: EventMeta<'sse:gap'> = { type: 'sse:gap', channel: gap.channel, id: gap.firstId ?? '', cursor: event.lastEventId };
        if (!closed) options.onGap?.(gap, meta);
      },
      (error) => fail(error, { type: 'sse:gap', channel: '', id: '', cursor: event.lastEventId }),
    );
  };

  const fail = (error: unknown, meta: EventMeta) => {
    if (closed) return;
    if (!options.onError) throw error;
    options.onError(error as Error, meta);
  };

  const close = () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    source?.close();
    source = undefined;
    options.signal?.removeEventListener('abort', close);
    setState('closed');
  };

  if (options.signal?.aborted) close();
  else {
    options.signal?.addEventListener('abort', close);
    connect();
  }
  return close;
}

function decode(type: string, data: string, cursor: string): unknown {
  try {
    return decodeData(data, cursor);
  } catch (error) {
    throw new ValidationError('INVALID_DATA', `Event "${type}" is marked JSON but its data is not JSON`, { cause: error });
  }
}
