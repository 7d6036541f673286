import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import { BridgeError } from './errors.js';
import { connectDedicated, transportError, whenReady, type RedisTarget } from './redis.js';

/**
 * `POST /subscribe/<channel>` and `POST /psubscribe/<pattern>`: one dedicated subscriber
 * connection per request, streamed as `text/event-stream` in the lines @upstash/redis parses:
 *
 *   data: subscribe,<channel>,<count>              (only once Redis confirmed)
 *   data: message,<channel>,<payload>
 *   data: pmessage,<pattern>,<channel>,<payload>
 *   : ping                                         (heartbeat comment)
 *
 * The client splits the stream on "\n" and takes everything after the channel as the payload,
 * which it then JSON.parses (falling back to the raw string). A payload is therefore sent raw
 * unless it contains a line break; then it is sent as an equivalent single-line JSON text
 * (compacted JSON if it was JSON, else a JSON string literal), which the client's JSON.parse
 * turns back into the same value. Only clients with `automaticDeserialization: false` see the
 * JSON form of such payloads.
 */

export type SubscriptionKind = 'subscribe' | 'psubscribe';

export interface SubscriptionEvents {
  onOpen(): void;
  onMessage(): void;
  onClose(): void;
}

export interface Subscription {
  close(): void;
}

export async function openSubscription(
  kind: SubscriptionKind,
  name: string,
  req: IncomingMessage,
  res: ServerResponse,
  options: { target: RedisTarget; heartbeatMs: number; events: SubscriptionEvents },
): Promise<Subscription> {
  const subscriber = connectDedicated(options.target);
  let clientLeft = false;
  const markLeft = () => (clientLeft = true);
  res.once('close', markLeft);
  try {
    await whenReady(subscriber, options.target);
    const count = await (kind === 'subscribe' ? subscriber.subscribe(name) : subscriber.psubscribe(name));
    if (clientLeft) throw new BridgeError(499, 'The client left before the subscription was confirmed');
    res.off('close', markLeft);
    return stream(kind, name, Number(count), subscriber, req, res, options);
  } catch (error) {
    subscriber.disconnect();
    res.off('close', markLeft);
    throw transportError(error, options.target);
  }
}

function stream(
  kind: SubscriptionKind,
  name: string,
  count: number,
  subscriber: Redis,
  req: IncomingMessage,
  res: ServerResponse,
  options: { heartbeatMs: number; events: SubscriptionEvents },
): Subscription {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  req.socket.setNoDelay(true);
  const send = (line: string) => res.write(`${line}\n\n`);
  send(`data: ${kind},${name},${count}`);
  options.events.onOpen();

  subscriber.on('message', (channel: string, payload: string) => {
    send(`data: message,${channel},${singleLine(payload)}`);
    options.events.onMessage();
  });
  subscriber.on('pmessage', (pattern: string, channel: string, payload: string) => {
    send(`data: pmessage,${pattern},${channel},${singleLine(payload)}`);
    options.events.onMessage();
  });
  const heartbeat = setInterval(() => send(': ping'), options.heartbeatMs);
  heartbeat.unref();

  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    subscriber.disconnect();
    if (!res.writableEnded) res.end();
    options.events.onClose();
  };
  res.once('close', close);
  subscriber.once('end', close); // Redis went away: end the stream so the client can resubscribe
  return { close };
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
