/**
 * A token producer through the bridge: 2,000 events of ~20 bytes, one every 2 ms (as an LLM
 * streams an answer), published with `sendEvent` and NOT awaited one by one, to 10 listeners on
 * the channel. What it costs in requests at the publisher's bridge, whether the listeners get the
 * tokens in order, and publish → receive latency at every listener.
 *
 * Subjects: edge-sse fire-and-forget (the case auto-pipelining is for), edge-sse awaiting each
 * call (the producer then falls behind when a request takes over 2 ms), and @upstash/realtime's
 * `emit` fire-and-forget for reference. Publisher and listeners each on their own bridge.
 */
import type { Bridge } from '../src/bridge/index.js';
import { type Connection, cleanUp, edgeSSE, openEdge, openRealtime, prefixFor, realtimeOn, startBridge } from './redis-common.js';
import { percentile, sleep } from './stats.js';
import { type Cell, formatMs, formatNumber, printTable } from './table.js';

const TOKENS = Number(process.env.BENCH_TOKENS ?? 2000);
const EVERY_MS = 2;
const LISTENERS = 10;
const CHANNEL = 'answer';
const ARRIVAL_TIMEOUT_MS = 15_000;

/** `12|tok tok tok`, padded to ~20 bytes. */
const token = (seq: number) => `${seq}|${'tok '.repeat(5)}`.slice(0, 20);
const SEQ = /^data: ?(?:\{"seq":)?(\d+)/m;

interface Running {
  /** Publishes seq; resolves once the publish call resolved. */
  publish(seq: number): Promise<unknown>;
  listeners: Connection[];
  publishBridge: Bridge;
  close(): Promise<void>;
}

interface Subject {
  name: string;
  awaitEach: boolean;
  start(onArrival: (listener: number, seq: number) => void): Promise<Running>;
}

async function bridges(): Promise<[Bridge, Bridge]> {
  return Promise.all([startBridge(), startBridge()]);
}

function edge(awaitEach: boolean): Subject {
  return {
    name: `edge-sse sendEvent, ${awaitEach ? 'each awaited' : 'fire-and-forget'}`,
    awaitEach,
    async start(onArrival) {
      const [publishBridge, listenBridge] = await bridges();
      const prefix = prefixFor(`tokens-${awaitEach ? 'await' : 'fire'}`);
      const reading = edgeSSE(listenBridge, prefix);
      const listeners = Array.from({ length: LISTENERS }, (_, listener) =>
        openEdge(reading, CHANNEL, (frame) => {
          const match = SEQ.exec(frame.text);
          if (match && !frame.text.includes('event: sse:')) onArrival(listener, Number(match[1]));
        }),
      );
      await Promise.all(listeners.map((connection) => connection.ready));
      const publisher = edgeSSE(publishBridge, prefix);
      return {
        publish: (seq) => publisher.sendEvent('token', token(seq), { channel: CHANNEL }),
        listeners,
        publishBridge,
        close: () => closeAll(listeners, [publishBridge, listenBridge]),
      };
    },
  };
}

function realtime(): Subject {
  return {
    name: '@upstash/realtime 1.1 emit, fire-and-forget',
    awaitEach: false,
    async start(onArrival) {
      const [publishBridge, listenBridge] = await bridges();
      const channel = `${prefixFor('tokens-rt')}${CHANNEL}`;
      const reading = realtimeOn(listenBridge);
      const listeners = Array.from({ length: LISTENERS }, (_, listener) =>
        openRealtime(reading, channel, (frame) => {
          const match = /"seq":(\d+)/.exec(frame.text);
          if (match) onArrival(listener, Number(match[1]));
        }),
      );
      await Promise.all(listeners.map((connection) => connection.ready));
      const publisher = realtimeOn(publishBridge).channel(channel);
      return {
        publish: (seq) => publisher.emit('order.updated', { seq, t: 'tok tok' }),
        listeners,
        publishBridge,
        close: () => closeAll(listeners, [publishBridge, listenBridge]),
      };
    },
  };
}

async function closeAll(listeners: Connection[], open: Bridge[]): Promise<void> {
  for (const listener of listeners) listener.close();
  await Promise.all(listeners.map((listener) => listener.ended));
  await Promise.all(open.map((bridge) => bridge.close()));
}

interface Result {
  requests: number;
  maxInFlight: number;
  /** Arrivals of a seq lower than one that listener already had. */
  outOfOrder: number;
  missing: number;
  duplicates: number;
  latencies: number[];
  producerMs: number;
}

async function measure(subject: Subject): Promise<Result> {
  const sentAt = new Float64Array(TOKENS).fill(NaN);
  const seen = Array.from({ length: LISTENERS }, () => new Uint8Array(TOKENS));
  const highest = new Array<number>(LISTENERS).fill(-1);
  const latencies: number[] = [];
  let outOfOrder = 0;
  let duplicates = 0;
  let arrived = 0;
  let allArrived!: () => void;
  const done = new Promise<void>((resolve) => (allArrived = resolve));
  const running = await subject.start((listener, seq) => {
    if (seq >= TOKENS) return;
    if (seen[listener]![seq]) return void duplicates++;
    seen[listener]![seq] = 1;
    latencies.push(performance.now() - sentAt[seq]!);
    if (seq < highest[listener]!) outOfOrder++;
    highest[listener] = Math.max(highest[listener]!, seq);
    if (++arrived === TOKENS * LISTENERS) allArrived();
  });
  try {
    const before = running.publishBridge.stats().requests;
    let inFlight = 0;
    let maxInFlight = 0;
    const calls: Promise<unknown>[] = [];
    const started = performance.now();
    for (let seq = 0; seq < TOKENS; seq++) {
      const due = started + seq * EVERY_MS;
      const wait = due - performance.now();
      if (wait > 0.5) await sleep(wait);
      sentAt[seq] = performance.now();
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const call = running.publish(seq).finally(() => inFlight--);
      calls.push(call);
      if (subject.awaitEach) await call;
    }
    await Promise.all(calls);
    const producerMs = performance.now() - started;
    await Promise.race([done, sleep(ARRIVAL_TIMEOUT_MS)]);
    const requests = running.publishBridge.stats().requests - before;
    return { requests, maxInFlight, outOfOrder, missing: TOKENS * LISTENERS - arrived, duplicates, latencies, producerMs };
  } finally {
    await running.close();
  }
}

function row(name: string, result: Result): Cell[] {
  return [
    name,
    formatNumber(result.requests),
    formatNumber(result.requests / TOKENS, 3),
    result.maxInFlight,
    result.outOfOrder,
    result.missing,
    result.duplicates,
    formatMs(percentile(result.latencies, 50)),
    formatMs(percentile(result.latencies, 99)),
    formatMs(result.producerMs),
  ];
}

export async function run(): Promise<void> {
  const subjects = [edge(false), edge(true), realtime()];
  const rows: Cell[][] = [];
  try {
    for (const subject of subjects) rows.push(row(subject.name, await measure(subject)));
  } finally {
    await cleanUp();
  }
  printTable(
    `Token producer through the bridge: ${formatNumber(TOKENS)} events of ~20 bytes, one every ${EVERY_MS} ms, ${LISTENERS} listeners`,
    ['publisher', 'pub requests', 'req/event', 'max in flight', 'out of order', 'missing', 'twice', 'p50', 'p99', 'producer took'],
    rows,
  );
  console.log(
    '\n"out of order": arrivals, summed over the listeners, of a token lower than one that listener already had.\n' +
      '"max in flight": publish calls not yet resolved at once. Latency: from the publish call to each listener\'s read.',
  );
}
