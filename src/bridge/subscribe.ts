import type { IncomingMessage, ServerResponse } from 'node:http';
import { EVENT_STREAM_HEADERS } from '../common/responses.js';
import { BridgeError } from './errors.js';
import type { Membership, Message, SharedSubscriber, SubscriptionKind } from './subscriber.js';

/**
 * `POST /subscribe/<channel>` and `POST /psubscribe/<pattern>`: a listener on the shared
 * subscriber (subscriber.ts), streamed as `text/event-stream` in the lines @upstash/redis parses:
 *
 *   data: subscribe,<channel>,1                    (only once Redis confirmed)
 *   data: message,<channel>,<payload>
 *   data: pmessage,<pattern>,<channel>,<payload>
 *   : ping                                         (heartbeat comment)
 *
 * The count is always 1: each stream is one subscription, whatever else the shared connection
 * holds. The client splits the stream on "\n" and takes everything after the channel as the
 * payload, which it then JSON.parses (falling back to the raw string). A payload is therefore
 * sent raw unless it contains a line break; then it is sent as an equivalent single-line JSON
 * text (compacted JSON if it was JSON, else a JSON string literal), which the client's
 * JSON.parse turns back into the same value. Only clients with `automaticDeserialization: false`
 * see the JSON form of such payloads.
 *
 * The channel of a `pmessage` is whatever a publisher named it, so it is percent-encoded where
 * it holds `%`, `,`, CR or LF (decodeURIComponent gives the name back): a channel named
 * "x\n\ndata: …" cannot forge a frame, and one with a comma cannot shift the fields. Channels of
 * `subscribe` and patterns are the subscriber's own, and refused if they hold a line break.
 */

export type { SubscriptionKind };

export interface SubscriptionEvents {
  onOpen(): void;
  onMessage(): void;
  onClose(): void;
}

export interface Subscription {
  close(): void;
}

/** A listener whose unread output passes this is cut off, so one stalled client cannot hold the bridge's memory. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export async function openSubscription(
  kind: SubscriptionKind,
  name: string,
  req: IncomingMessage,
  res: ServerResponse,
  options: { subscriber: SharedSubscriber; heartbeatMs: number; events: SubscriptionEvents },
): Promise<Subscription> {
  let close: (() => void) | undefined;
  let endedEarly = false;
  let clientLeft = false;
  const markLeft = () => (clientLeft = true);
  res.once('close', markLeft);
  let membership: Membership;
  try {
    membership = await options.subscriber.join(kind, name, {
      deliver: (message) => {
        if (write(res, frameOf(kind, message))) options.events.onMessage();
      },
      end: () => (close ? close() : (endedEarly = true)),
    });
  } finally {
    res.off('close', markLeft);
  }
  if (clientLeft || endedEarly) {
    membership.leave();
    if (clientLeft) throw new BridgeError(499, 'The client left before the subscription was confirmed');
    throw new BridgeError(502, 'Redis closed the subscriber connection before the subscription started');
  }
  close = stream(kind, name, membership, req, res, options);
  return { close };
}

function stream(
  kind: SubscriptionKind,
  name: string,
  membership: Membership,
  req: IncomingMessage,
  res: ServerResponse,
  options: { heartbeatMs: number; events: SubscriptionEvents },
): () => void {
  res.writeHead(200, { ...EVENT_STREAM_HEADERS, Connection: 'keep-alive' });
  req.socket.setNoDelay(true);
  write(res, `data: ${kind},${name},1`);
  options.events.onOpen();
  const heartbeat = setInterval(() => write(res, ': ping'), options.heartbeatMs);
  heartbeat.unref();

  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    membership.leave();
    if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
    else if (!res.writableEnded) res.end();
    options.events.onClose();
  };
  res.once('close', close);
  membership.start();
  return close;
}

/** Writes one SSE block; false (and the stream cut) once the client lets too much pile up. */
function write(res: ServerResponse, line: string): boolean {
  if (res.destroyed || res.writableEnded) return false;
  res.write(`${line}\n\n`);
  if (res.writableLength <= MAX_BUFFERED_BYTES) return true;
  res.destroy(); // emits 'close', which ends the subscription
  return false;
}

function frameOf(kind: SubscriptionKind, message: Message): string {
  const payload = singleLine(message.payload);
  if (kind === 'subscribe') return `data: message,${message.channel},${payload}`;
  return `data: pmessage,${message.pattern},${encodeChannel(message.channel)},${payload}`;
}

/** A channel name that cannot end a line or shift a field; decodeURIComponent reverses it. */
function encodeChannel(channel: string): string {
  return channel.replace(/[%,\r\n]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
}

/** A payload that cannot break SSE framing and JSON.parses to what the raw payload would. */
export function singleLine(payload: string): string {
  if (!/[\r\n]/.test(payload)) return payload;
  try {
    return JSON.stringify(JSON.parse(payload));
  } catch {
    return JSON.stringify(payload);
  }
}
