import type { AnyEvents, EventMap, SchemaMap, SchemaOutputs } from '../publish/schema.js';

/**
 * `connecting`: first connection, no cursor yet. `open`: streaming. `resuming`: reconnecting from
 * the cursor (EventSource on its own, or this helper after EventSource gave up). `closed`: for good.
 */
export type ConnectionState = 'connecting' | 'open' | 'resuming' | 'closed';

export interface EventMeta<Type extends string = string> {
  type: Type;
  /** The channel the event was published on. */
  channel: string;
  /** Its stream id on that channel: what `sendEvent` returned for it. */
  id: string;
  /** The connection's position after it (the SSE `id:`); pass it as `lastEventId` to resume later. */
  cursor: string;
}

/**
 * Events after the client's cursor on `channel` are gone (trimmed, or the channel expired or its
 * store restarted): events before `firstId` are lost.
 */
export interface Gap {
  channel: string;
  /** The oldest event still kept, or null when the channel is now empty. */
  firstId: string | null;
}

export type Handlers<Events extends EventMap> = {
  [Type in keyof Events & string]?: (data: Events[Type], meta: EventMeta<Type>) => void;
};

/** The part of EventSource this helper uses: the browser's, or e.g. the `eventsource` package's. */
export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
  close(): void;
}

export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

/** Milliseconds to wait before recreating an EventSource that gave up, or false to stay closed. */
export type ReconnectPolicy = (attempt: number) => number | false;

export interface SubscribeOptions<Events extends EventMap = AnyEvents> {
  /** Appended as `?channel=…`; default: the channels already in the URL, else `sse`. */
  channels?: string | readonly string[];
  on?: Handlers<Events>;
  onGap?: (gap: Gap, meta: EventMeta<'sse:gap'>) => void;
  onStateChange?: (state: ConnectionState) => void;
  /** Data that could not be decoded or that a schema refused; the event is skipped. Default: throw. */
  onError?: (error: Error, meta: EventMeta) => void;
  signal?: AbortSignal;
  /** A cursor kept from an earlier subscription (`meta.cursor`): start after it. */
  lastEventId?: string;
  /** After EventSource gives up (an error status such as 5xx): default 1 s doubling to 30 s, 10 attempts. */
  reconnect?: ReconnectPolicy | false;
  /** Default: globalThis.EventSource. */
  EventSource?: EventSourceConstructor;
  withCredentials?: boolean;
}

export interface SchemaSubscribeOptions<Schemas extends SchemaMap> extends SubscribeOptions<SchemaOutputs<Schemas>> {
  /** Validate each event's data on receipt with these Standard Schemas; handlers get their output. */
  schemas: Schemas;
}

export type Unsubscribe = () => void;
