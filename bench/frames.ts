/**
 * Frame encoding: one event in, the bytes a socket would get out (Uint8Array), 1,000,000 times,
 * for edge-sse and the references, side by side, several rounds, median rate.
 */
import { Connection, EventBuffer, createSession } from 'better-sse';
import { createParser } from 'eventsource-parser';
import { SSEStreamingApi } from 'hono/streaming';
import { formatCursor } from '../src/wire/cursor.js';
import { type SSEFrame, encodeText, formatEvent } from '../src/wire/frames.js';
import { prepareEvent } from '../src/publish/publish.js';
import { type BenchEvent, EVENT_TYPE, makeEvents } from './events.js';
import { encodePooled, formatEventFast } from './prototype.js';
import { max, median } from './stats.js';
import { formatNumber, formatRatio, printTable } from './table.js';

const EVENTS = 1_000_000;
const WARM_UP_EVENTS = 100_000;
const ROUNDS = 3;

type Sink = (bytes: Uint8Array) => void;
/** Encodes `count` events from the pool, handing every frame's bytes to `sink`. */
type Encode = (events: readonly BenchEvent[], count: number, sink: Sink) => void | Promise<void>;

interface Contender {
  name: string;
  input: 'JSON text' | 'object';
  /** The edge-sse row each reference is compared with (same input). */
  baseline?: boolean;
  prototype?: boolean;
  /** A diagnostic row: part of edge-sse's work only (its output is text, not bytes). */
  breakdown?: boolean;
  create: () => Encode | Promise<Encode>;
}

const encoder = new TextEncoder();
const MAX_EVENT_BYTES = 64 * 1024;

/** What `Session.frameFor`/`encodeEvent` does per event on a one-channel connection. */
function edgeSSE(fromObject: boolean): Encode {
  return (events, count, sink) => {
    const sent = ['0-0'];
    for (let index = 0; index < count; index++) {
      const event = events[index % events.length]!;
      // From an object, edge-sse serialises once when publishing (sendEvent → prepareEvent).
      const stored = fromObject
        ? { id: event.id, ...prepareEvent({ type: event.type, data: event.object }, MAX_EVENT_BYTES) }
        : { id: event.id, type: event.type, data: event.json, json: true };
      sent[0] = stored.id;
      sink(encodeText(formatEvent({ id: formatCursor(sent, stored.json), event: stored.type, data: stored.data })));
    }
  };
}

/** Diagnostic: edge-sse's formatting alone, no UTF-8 encoding (the rest of its time is TextEncoder). */
function edgeSSEFormatOnly(): Encode {
  const empty = new Uint8Array(0);
  return (events, count, sink) => {
    const sent = ['0-0'];
    let length = 0;
    for (let index = 0; index < count; index++) {
      const event = events[index % events.length]!;
      sent[0] = event.id;
      length += formatEvent({ id: formatCursor(sent, true), event: event.type, data: event.json }).length;
      sink(empty);
    }
    if (length === 0) throw new Error('unreachable: keeps the formatting from being optimised away');
  };
}

/** The change proposed for src/wire/frames.ts: encodeInto a shared slab (optionally with a one-template formatter). */
function edgeSSEPrototype(format: (frame: SSEFrame) => string): Encode {
  return (events, count, sink) => {
    const sent = ['0-0'];
    for (let index = 0; index < count; index++) {
      const event = events[index % events.length]!;
      sent[0] = event.id;
      sink(encodePooled(format({ id: formatCursor(sent, true), event: event.type, data: event.json })));
    }
  };
}

/** better-sse's EventBuffer, then TextEncoder: what its connections do with the buffer's text. */
function betterSSEBuffer(fromObject: boolean): Encode {
  const buffer = new EventBuffer(fromObject ? {} : { serializer: (data) => data as string });
  return (events, count, sink) => {
    for (let index = 0; index < count; index++) {
      const event = events[index % events.length]!;
      buffer.push(fromObject ? event.object : event.json, event.type, event.id);
      sink(encoder.encode(buffer.read()));
      buffer.clear();
    }
  };
}

/** A better-sse Connection whose socket is the sink; it encodes like FetchConnection does. */
class SinkConnection extends Connection {
  url = new URL('http://bench.local/events');
  request = new Request(this.url);
  response = new Response(null, { headers: Connection.constants.RESPONSE_HEADERS });
  sink: Sink = () => {};
  sendHead(): void {}
  sendChunk(chunk: string): void {
    this.sink(encoder.encode(chunk));
  }
  cleanup(): void {}
}

/** better-sse's Session.push: EventBuffer, flush, Connection.sendChunk, `push` event. */
async function betterSSESession(fromObject: boolean): Promise<Encode> {
  const connection = new SinkConnection();
  const options = { keepAlive: null, retry: null, ...(fromObject ? {} : { serializer: (data: unknown) => data as string }) };
  const session = await createSession(connection, options);
  if (!session.isConnected) await new Promise((resolve) => session.once('connected', () => resolve(undefined)));
  return (events, count, sink) => {
    connection.sink = sink;
    for (let index = 0; index < count; index++) {
      const event = events[index % events.length]!;
      session.push(fromObject ? event.object : event.json, event.type, event.id);
    }
  };
}

/** hono's writeSSE on an SSEStreamingApi whose writable is the sink (in an app, a TransformStream). */
function hono(): Encode {
  let sink: Sink = () => {};
  const writable = new WritableStream<Uint8Array>({ write: (chunk) => sink(chunk) });
  const api = new SSEStreamingApi(writable, new ReadableStream());
  return async (events, count, target) => {
    sink = target;
    for (let index = 0; index < count; index++) {
      const event = events[index % events.length]!;
      await api.writeSSE({ data: event.json, event: event.type, id: event.id });
    }
  };
}

const CONTENDERS: Contender[] = [
  { name: 'edge-sse encodeEvent', input: 'JSON text', baseline: true, create: () => edgeSSE(false) },
  { name: 'better-sse EventBuffer + TextEncoder', input: 'JSON text', create: () => betterSSEBuffer(false) },
  { name: 'better-sse Session.push', input: 'JSON text', create: () => betterSSESession(false) },
  { name: 'hono writeSSE', input: 'JSON text', create: hono },
  { name: 'edge-sse prepareEvent + encodeEvent', input: 'object', baseline: true, create: () => edgeSSE(true) },
  { name: 'better-sse EventBuffer + TextEncoder', input: 'object', create: () => betterSSEBuffer(true) },
  { name: 'better-sse Session.push', input: 'object', create: () => betterSSESession(true) },
  { name: 'breakdown: edge-sse formatEvent only (text)', input: 'JSON text', breakdown: true, create: edgeSSEFormatOnly },
  { name: 'PROTOTYPE formatEvent + pooled encodeInto', input: 'JSON text', prototype: true, create: () => edgeSSEPrototype(formatEvent) },
  {
    name: 'PROTOTYPE formatEventFast + pooled encodeInto',
    input: 'JSON text',
    prototype: true,
    create: () => edgeSSEPrototype((frame) => formatEventFast(frame, formatEvent)),
  },
];

interface Measured {
  contender: Contender;
  encode: Encode;
  rates: number[];
  bytesPerEvent: number;
}

async function timeRun(encode: Encode, events: readonly BenchEvent[], count: number): Promise<{ rate: number; bytes: number }> {
  let bytes = 0;
  const start = performance.now();
  await encode(events, count, (chunk) => {
    bytes += chunk.byteLength;
  });
  return { rate: count / ((performance.now() - start) / 1000), bytes };
}

/** Every contender must put the same event on the wire: same data and name once parsed. */
async function checkSameEvent(measured: Measured[], event: BenchEvent): Promise<void> {
  for (const { contender, encode } of measured) {
    if (contender.breakdown) continue;
    const chunks: Uint8Array[] = [];
    await encode([event], 1, (chunk) => chunks.push(chunk));
    const parsed: { event?: string; data: string }[] = [];
    const parser = createParser({ onEvent: (message) => parsed.push(message) });
    for (const chunk of chunks) parser.feed(new TextDecoder().decode(chunk));
    const [message] = parsed;
    if (parsed.length !== 1 || message?.event !== EVENT_TYPE || message.data !== event.json) {
      throw new Error(`${contender.name} (${contender.input}) did not encode the benchmark event: ${JSON.stringify(parsed)}`);
    }
  }
}

export async function run(): Promise<void> {
  const events = makeEvents();
  const measured: Measured[] = [];
  for (const contender of CONTENDERS) measured.push({ contender, encode: await contender.create(), rates: [], bytesPerEvent: 0 });
  await checkSameEvent(measured, events[0]!);

  for (const entry of measured) await timeRun(entry.encode, events, WARM_UP_EVENTS);
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order so no contender always runs right after the same neighbour.
    for (let offset = 0; offset < measured.length; offset++) {
      const entry = measured[(round + offset) % measured.length]!;
      const { rate, bytes } = await timeRun(entry.encode, events, EVENTS);
      entry.rates.push(rate);
      entry.bytesPerEvent = bytes / EVENTS;
    }
  }
  printResults(measured);
}

function printResults(measured: Measured[]): void {
  const baselineRate = (input: Contender['input']) =>
    median(measured.find((entry) => entry.contender.baseline && entry.contender.input === input)!.rates);
  const rows = measured.map(({ contender, rates, bytesPerEvent }) => {
    const rate = median(rates);
    const vsEdge = contender.prototype || contender.breakdown;
    const ratio = vsEdge ? rate / baselineRate('JSON text') : baselineRate(contender.input) / rate;
    return [
      contender.name,
      contender.input,
      formatNumber(rate),
      `${formatNumber(Math.min(...rates))}–${formatNumber(max(rates))}`,
      contender.breakdown ? '(text)' : formatNumber(bytesPerEvent),
      contender.baseline ? '—' : formatRatio(ratio),
    ];
  });
  printTable(
    `Frame encoding: event → Uint8Array, ${formatNumber(EVENTS)} events × ${ROUNDS} rounds (median)`,
    ['encoder', 'input', 'events/s', 'min–max', 'bytes/event', 'edge-sse ÷ it'],
    rows,
  );
  console.log(
    '\n"edge-sse ÷ it" = edge-sse\'s rate for the same input divided by this row\'s (higher is better for edge-sse;\n' +
      'breakdown and PROTOTYPE rows are the other way round: that row ÷ current edge-sse, JSON text).',
  );
}
