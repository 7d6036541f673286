import { Redis } from '@upstash/redis';
import type { Redis as IORedis } from 'ioredis';
import { SSEReader } from '../helpers/sse.js';

/** What the bridge tests share: raw HTTP calls, the real @upstash/redis client, connection counts. */

export const TOKEN = 'bridge-test-token-which-is-secret';

export interface RawAnswer {
  status: number;
  type: string | null;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read into replies of every shape
  json: any;
  headers: Headers;
}

/** POSTs `body` (JSON-encoded unless a string) with the bridge token. */
export async function post(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<RawAnswer> {
  return request(base, path, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

export async function request(base: string, path: string, init: RequestInit = {}): Promise<RawAnswer> {
  const response = await fetch(`${base}${path}`, init);
  const bytes = Buffer.from(await response.arrayBuffer());
  const text = bytes.toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, type: response.headers.get('content-type'), text, json, headers: response.headers };
}

export function upstashClient(
  url: string,
  options: { autoPipeline?: boolean; responseEncoding?: false; automaticDeserialization?: boolean; token?: string } = {},
): Redis {
  return new Redis({
    url,
    token: options.token ?? TOKEN,
    enableAutoPipelining: options.autoPipeline ?? false,
    responseEncoding: options.responseEncoding,
    automaticDeserialization: options.automaticDeserialization,
    enableTelemetry: false,
    retry: false,
  });
}

/** Opens `/subscribe/<channel>` or `/psubscribe/<pattern>` and reads it with eventsource-parser. */
export async function openStream(base: string, path: string, signal?: AbortSignal): Promise<SSEReader> {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, Accept: 'text/event-stream' },
    body: '[]',
    signal,
  });
  if (response.status !== 200) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
  return new SSEReader(response);
}

/** Clients connected to a Redis of the test's own, not counting `counter` itself. */
export async function connectionsBesides(counter: IORedis): Promise<number> {
  const list = (await counter.client('LIST')) as string;
  return list.trim().split('\n').filter(Boolean).length - 1;
}
