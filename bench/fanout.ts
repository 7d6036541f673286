/**
 * Memory-backend fan-out: 1 publisher, 1,000 connections in this process. For each broadcast,
 * the time from just before publishing to each connection reading the event (p50, p99, last),
 * and heap per connection after GC, for edge-sse and better-sse side by side, at two layers:
 *
 * - in-process: fetch-style Response bodies read directly (edge-sse's handler; better-sse's
 *   Fetch API sessions), no sockets: the libraries' own cost.
 * - http: real HTTP on loopback (edge-sse through `serve` from edge-sse/node; better-sse on
 *   node:http req/res, its native adapter), read by node:http clients in the same process.
 */
import { type ClientRequest, type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createChannel, createSession } from 'better-sse';
import { core, node } from './subject.js';

const { createSSE, memoryBackend } = core;
const { serve } = node;
import { Delivery, type Listener, loopbackAgent, openHttp, readBody } from './clients.js';
import { EVENT_TYPE, makeEvents } from './events.js';
import { heapAfterSocketsClosed, max, median, percentile, settledHeap, sleep } from './stats.js';
import { type Cell, formatBytes, formatMs, formatNumber, formatRatio, printTable } from './table.js';

const CONNECTIONS = 1000;
const ROUNDS = 3;
const WARM_UP_BROADCASTS = 3;
const BROADCASTS = 20;
/** Connections opened at once (a listen backlog of 511 would drop a burst of 1,000 SYNs). */
const CONNECT_BATCH = 100;
const PATH = '/events';

type Layer = 'in-process' | 'http';

interface Setup {
  /** Opens `count` connections reporting to `delivery`; resolves once every one would get a broadcast. */
  open(count: number, delivery: Delivery): Promise<void>;
  publish(payload: object): void;
  close(): Promise<void>;
}

interface Contender {
  name: 'edge-sse' | 'better-sse' | 'bare node:http';
  layer: Layer;
  create(): Promise<Setup>;
}

/** Resolves once `tick` has been called `count` times. */
function countdown(count: number): { tick: () => void; done: Promise<void> } {
  let left = count;
  let resolve!: () => void;
  const done = new Promise<void>((settle) => (resolve = settle));
  return { tick: () => --left === 0 && resolve(), done };
}

async function inBatches(count: number, open: () => Promise<unknown>): Promise<void> {
  for (let opened = 0; opened < count; opened += CONNECT_BATCH) {
    await Promise.all(Array.from({ length: Math.min(CONNECT_BATCH, count - opened) }, open));
  }
}

// ---- edge-sse ------------------------------------------------------------------------------

function edgeInProcess(): Promise<Setup> {
  const sse = createSSE({ backend: memoryBackend() });
  const aborters: AbortController[] = [];
  const readers: Promise<void>[] = [];
  return Promise.resolve({
    async open(count, delivery) {
      const ready = countdown(count);
      const listener: Listener = { onSeq: (seq) => delivery.arrived(seq), onReady: ready.tick };
      await inBatches(count, async () => {
        const aborter = new AbortController();
        aborters.push(aborter);
        const response = await sse.handler(new Request(`http://bench.local${PATH}`, { signal: aborter.signal }));
        readers.push(readBody(response.body!, listener));
      });
      await ready.done;
    },
    publish: (payload) => void sse.sendEvent(EVENT_TYPE, payload).catch(console.error),
    async close() {
      for (const aborter of aborters) aborter.abort();
      await Promise.all(readers);
      await sse.backend.close();
    },
  });
}

async function edgeHttp(): Promise<Setup> {
  const sse = createSSE({ backend: memoryBackend() });
  const server = await serve(sse.handler, { onError: () => {} });
  return httpSetup(`${server.url}${PATH}`, {
    readiness: 'sse:ready',
    publish: (payload) => void sse.sendEvent(EVENT_TYPE, payload).catch(console.error),
    close: async () => {
      await server.close();
      await sse.backend.close();
    },
  });
}

// ---- better-sse ----------------------------------------------------------------------------

function betterInProcess(): Promise<Setup> {
  const channel = createChannel();
  const aborters: AbortController[] = [];
  const readers: Promise<void>[] = [];
  return Promise.resolve({
    async open(count, delivery) {
      const ready = countdown(count);
      const listener: Listener = { onSeq: (seq) => delivery.arrived(seq), onReady: () => {} };
      await inBatches(count, async () => {
        const aborter = new AbortController();
        aborters.push(aborter);
        const session = await createSession(new Request(`http://bench.local${PATH}`, { signal: aborter.signal }));
        readers.push(readBody(session.getResponse().body!, listener));
        // A Fetch session connects on the next turn of the event loop; only then can it join a channel.
        session.once('connected', () => {
          channel.register(session);
          ready.tick();
        });
      });
      await ready.done;
    },
    publish: (payload) => void channel.broadcast(payload, EVENT_TYPE),
    async close() {
      for (const aborter of aborters) aborter.abort();
      await Promise.all(readers);
    },
  });
}

async function betterHttp(): Promise<Setup> {
  const channel = createChannel();
  let registered = () => {};
  const server = await listen(async (req, res) => {
    channel.register(await createSession(req, res));
    registered();
  });
  return httpSetup(`${server.url}${PATH}`, {
    readiness: (tick) => (registered = tick),
    publish: (payload) => void channel.broadcast(payload, EVENT_TYPE),
    close: server.close,
  });
}

// ---- the floor: node:http writing one pre-encoded frame to every response -----------------

async function bareHttp(): Promise<Setup> {
  const responses = new Set<ServerResponse>();
  const encoder = new TextEncoder();
  const server = await listen((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('event: sse:ready\ndata: {}\n\n');
    responses.add(res);
    res.on('close', () => responses.delete(res));
  });
  return httpSetup(`${server.url}${PATH}`, {
    readiness: 'sse:ready',
    publish: (payload) => {
      const frame = encoder.encode(`event: ${EVENT_TYPE}\ndata: ${JSON.stringify(payload)}\n\n`);
      for (const res of responses) res.write(frame);
    },
    close: server.close,
  });
}

// ---- shared HTTP plumbing -----------------------------------------------------------------

interface HttpServer {
  url: string;
  close: () => Promise<void>;
}

function listen(handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>): Promise<HttpServer> {
  const server: Server = createServer((req, res) => void handler(req, res));
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      const close = () =>
        new Promise<void>((done) => {
          server.close(() => done());
          server.closeAllConnections();
        });
      resolve({ url: `http://127.0.0.1:${port}`, close });
    });
  });
}

interface HttpOptions {
  /** `sse:ready` when clients can tell, else a hook the server calls once per live connection. */
  readiness: 'sse:ready' | ((tick: () => void) => void);
  publish: (payload: object) => void;
  close: () => Promise<void>;
}

function httpSetup(url: string, options: HttpOptions): Setup {
  const agent = loopbackAgent();
  const requests: ClientRequest[] = [];
  return {
    async open(count, delivery) {
      const ready = countdown(count);
      const clientSeesReady = options.readiness === 'sse:ready';
      if (!clientSeesReady) (options.readiness as (tick: () => void) => void)(ready.tick);
      const listener: Listener = {
        onSeq: (seq) => delivery.arrived(seq),
        onReady: clientSeesReady ? ready.tick : () => {},
      };
      await inBatches(count, async () => requests.push(await openHttp(url, agent, listener)));
      await ready.done;
    },
    publish: options.publish,
    async close() {
      for (const request of requests) request.destroy();
      await options.close();
      agent.destroy();
    },
  };
}

// ---- measuring ----------------------------------------------------------------------------

const CONTENDERS: Contender[] = [
  { name: 'edge-sse', layer: 'in-process', create: edgeInProcess },
  { name: 'better-sse', layer: 'in-process', create: betterInProcess },
  { name: 'edge-sse', layer: 'http', create: edgeHttp },
  { name: 'better-sse', layer: 'http', create: betterHttp },
  { name: 'bare node:http', layer: 'http', create: bareHttp },
];

interface BroadcastStats {
  p50: number;
  p99: number;
  last: number;
}

interface Sample {
  contender: Contender;
  connectMs: number;
  heapPerConnection: number;
  broadcasts: BroadcastStats[];
}

const events = makeEvents();
let nextSeq = 0;

async function broadcast(setup: Setup, delivery: Delivery): Promise<BroadcastStats> {
  const seq = nextSeq++;
  const payload = { seq, ...events[seq % events.length]!.object };
  const latencies = await delivery.measure(seq, () => setup.publish(payload));
  await sleep(5); // let writes settle before the next broadcast
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), last: max(latencies) };
}

async function measure(contender: Contender): Promise<Sample> {
  const heapBefore = await heapAfterSocketsClosed();
  const setup = await contender.create();
  const delivery = new Delivery(CONNECTIONS);
  const started = performance.now();
  await setup.open(CONNECTIONS, delivery);
  const connectMs = performance.now() - started;
  for (let index = 0; index < WARM_UP_BROADCASTS; index++) await broadcast(setup, delivery);
  const heapPerConnection = ((await settledHeap()) - heapBefore) / CONNECTIONS;
  const broadcasts: BroadcastStats[] = [];
  for (let index = 0; index < BROADCASTS; index++) broadcasts.push(await broadcast(setup, delivery));
  await setup.close();
  return { contender, connectMs, heapPerConnection, broadcasts };
}

export async function run(): Promise<void> {
  const samples: Sample[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate the order of the libraries between rounds.
    const order = round % 2 === 0 ? CONTENDERS : [...CONTENDERS].reverse();
    for (const contender of order) samples.push(await measure(contender));
  }
  for (const layer of ['in-process', 'http'] as const) printLayer(layer, samples);
}

interface Summary {
  name: string;
  p50: number;
  p99: number;
  last: number;
  heap: number;
  connect: number;
}

function summarise(name: string, samples: Sample[]): Summary {
  const broadcasts = samples.flatMap((sample) => sample.broadcasts);
  return {
    name,
    p50: median(broadcasts.map((stats) => stats.p50)),
    p99: median(broadcasts.map((stats) => stats.p99)),
    last: median(broadcasts.map((stats) => stats.last)),
    heap: median(samples.map((sample) => sample.heapPerConnection)),
    connect: median(samples.map((sample) => sample.connectMs)),
  };
}

function printLayer(layer: Layer, samples: Sample[]): void {
  const names = [...new Set(samples.filter((s) => s.contender.layer === layer).map((s) => s.contender.name))];
  const summaries = names.map((name) =>
    summarise(
      name,
      samples.filter((s) => s.contender.layer === layer && s.contender.name === name),
    ),
  );
  const rows: Cell[][] = summaries.map((s) => [
    s.name,
    formatMs(s.p50),
    formatMs(s.p99),
    formatMs(s.last),
    formatBytes(s.heap),
    formatMs(s.connect),
  ]);
  const edge = summaries.find((s) => s.name === 'edge-sse')!;
  const better = summaries.find((s) => s.name === 'better-sse')!;
  const ratio = (key: keyof Omit<Summary, 'name'>) => formatRatio(edge[key] / better[key]);
  rows.push(['edge-sse ÷ better-sse', ratio('p50'), ratio('p99'), ratio('last'), ratio('heap'), ratio('connect')]);
  printTable(
    `Fan-out, ${layer}: 1 publisher → ${formatNumber(CONNECTIONS)} connections, memory backend, ` +
      `${ROUNDS} rounds × ${BROADCASTS} broadcasts (medians)`,
    ['server', 'delivery p50', 'p99', 'last', 'heap/conn', `open ${formatNumber(CONNECTIONS)}`],
    rows,
  );
  console.log('\nRatios: lower is better for edge-sse (less time, less heap).');
}
