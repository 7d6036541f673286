/**
 * Idle cost on the Redis HTTP side: connections on one channel, nothing published, for a window
 * of whole 60-s periods (realtime pings every 60 s per connection). Every subject has its own
 * bridge, so the bridge's counters are that subject's alone; all run at once in this process.
 *
 * Per subject: Redis HTTP requests per new connection (the connect phase: from opening until
 * SETTLE_MS after the last connection was live), requests per connection-minute in the window,
 * messages the bridge pushed to subscribers in the window, and what the clients received in it.
 * Then every connection reconnects once, one after the other, as its client would when the
 * server ends the stream at its maximum duration (edge-sse resumes with Last-Event-ID): the
 * requests per reconnect, spread over a stream's mean lifetime, are the rest of the idle cost.
 */
import type { Bridge, BridgeStats } from '../src/bridge/index.js';
import {
  type Connection,
  type Frame,
  type Mode,
  cleanUp,
  edgeSSE,
  frameId,
  openEdge,
  openRealtime,
  prefixFor,
  realtimeOn,
  startBridge,
} from './redis-common.js';
import { sleep } from './stats.js';
import { type Cell, formatNumber, formatRatio, printTable } from './table.js';

/** Whole minutes, so every connection's 60-s ping falls in the window the same number of times. */
const WINDOW_MS = Number(process.env.BENCH_IDLE_SECONDS ?? 120) * 1000;
/** After the last connection is live: edge-sse's poll backs off 100 ms → 2 s within ~3 s. */
const SETTLE_MS = 5000;
/** After the reconnections: realtime reads history right after its `connected` event. */
const RECONNECT_SETTLE_MS = 500;
const CHANNEL = 'news';
/**
 * Mean stream lifetime with default options, in minutes: edge-sse ends a stream after 80–100% of
 * maxDurationMs (240 s) — 216 s on average; realtime after maxDurationSecs (300 s) minus 2 s.
 */
const LIFETIME_MIN = { edge: (0.9 * 240) / 60, realtime: 298 / 60 };

type Kind = `edge-sse ${Mode}` | `edge-sse ${Mode}, unshared readers` | '@upstash/realtime 1.1';

const SHORT_NAMES: Record<Kind, string> = {
  'edge-sse subscribe': 'sub',
  'edge-sse poll': 'poll',
  'edge-sse subscribe, unshared readers': 'sub-unshared',
  'edge-sse poll, unshared readers': 'poll-unshared',
  '@upstash/realtime 1.1': 'rt',
};

interface Subject {
  kind: Kind;
  connections: number;
  bridge: Bridge;
  /** Opens one connection; edge-sse resumes from `lastEventId` when given. */
  connect(onFrame: (frame: Frame) => void, lastEventId?: string): Connection;
}

/** One client: its connection, the last id it saw, what it read while counting. */
interface Client {
  connection: Connection;
  lastEventId?: string;
}

interface Received {
  events: number;
  comments: number;
}

interface Result {
  subject: Subject;
  atWindow: BridgeStats;
  atEnd: BridgeStats;
  windowMs: number;
  received: Received;
  reconnectRequests: number;
}

async function subject(kind: Kind, connections: number): Promise<Subject> {
  const bridge = await startBridge();
  const name = `idle-${SHORT_NAMES[kind]}-${connections}`;
  if (kind === '@upstash/realtime 1.1') {
    const realtime = realtimeOn(bridge);
    const channel = `${prefixFor(name)}${CHANNEL}`;
    return { kind, connections, bridge, connect: (onFrame) => openRealtime(realtime, channel, onFrame) };
  }
  const mode: Mode = kind.startsWith('edge-sse poll') ? 'poll' : 'subscribe';
  const sse = edgeSSE(bridge, prefixFor(name), mode, !kind.endsWith('unshared readers'));
  return { kind, connections, bridge, connect: (onFrame, lastEventId) => openEdge(sse, CHANNEL, onFrame, lastEventId) };
}

/** Opens a subject's clients; each remembers the last id it saw, and counts frames while `counting.on`. */
function openClients(item: Subject, received: Received, counting: { on: boolean }): Client[] {
  return Array.from({ length: item.connections }, () => {
    const client = {} as Client;
    const onFrame = (frame: Frame) => {
      client.lastEventId = frameId(frame) ?? client.lastEventId;
      if (!counting.on) return;
      if (frame.hasData) received.events++;
      else received.comments++;
    };
    client.connection = item.connect(onFrame);
    return client;
  });
}

/** Ends and reopens every client one after the other; resolves to the requests it took. */
async function reconnectAll(item: Subject, clients: Client[]): Promise<number> {
  const before = item.bridge.stats();
  for (const client of clients) {
    client.connection.close();
    await client.connection.ended;
    client.connection = item.connect((frame) => (client.lastEventId = frameId(frame) ?? client.lastEventId), client.lastEventId);
    await client.connection.ready;
  }
  await sleep(RECONNECT_SETTLE_MS);
  return item.bridge.stats().requests - before.requests;
}

/** Opens every subject at once, waits until all are live and settled, watches the window, reconnects. */
async function measure(subjects: Subject[]): Promise<Result[]> {
  const counting = { on: false };
  const received = subjects.map((): Received => ({ events: 0, comments: 0 }));
  const clients = subjects.map((item, index) => openClients(item, received[index]!, counting));
  const all = () => clients.flat().map((client) => client.connection);
  try {
    await Promise.all(all().map((connection) => connection.ready));
    await sleep(SETTLE_MS);
    const atWindow = subjects.map((item) => item.bridge.stats());
    counting.on = true;
    const started = performance.now();
    await sleep(WINDOW_MS);
    const windowMs = performance.now() - started;
    counting.on = false;
    const atEnd = subjects.map((item) => item.bridge.stats());
    const reconnects = await Promise.all(subjects.map((item, index) => reconnectAll(item, clients[index]!)));
    return subjects.map((item, index) => ({
      subject: item,
      atWindow: atWindow[index]!,
      atEnd: atEnd[index]!,
      windowMs,
      received: received[index]!,
      reconnectRequests: reconnects[index]!,
    }));
  } finally {
    for (const connection of all()) connection.close();
    await Promise.all(all().map((connection) => connection.ended));
  }
}

function idleRate(result: Result): number {
  const minutes = result.windowMs / 60_000;
  return (result.atEnd.requests - result.atWindow.requests) / result.subject.connections / minutes;
}

/** The window's rate plus one reconnection per mean stream lifetime. */
function withReconnects(result: Result): number {
  const lifetime = result.subject.kind.startsWith('edge-sse') ? LIFETIME_MIN.edge : LIFETIME_MIN.realtime;
  return idleRate(result) + result.reconnectRequests / result.subject.connections / lifetime;
}

/** "×0" when this subject made no request at all (formatRatio shows n/a for zero). */
function ratio(value: number, reference: number): string {
  return value === 0 && reference > 0 ? '×0' : formatRatio(value / reference);
}

function row(result: Result, reference: Result | undefined): Cell[] {
  const { subject, atWindow, atEnd, received } = result;
  const perConnection = (value: number, digits: number) => formatNumber(value / subject.connections, digits);
  const versus = (measure: (result: Result) => number) =>
    reference && reference !== result ? ratio(measure(result), measure(reference)) : '—';
  return [
    subject.kind,
    subject.connections,
    perConnection(atWindow.requests, 2),
    formatNumber(idleRate(result), 3),
    formatNumber(atEnd.pushedMessages - atWindow.pushedMessages),
    atEnd.openSubscriptions,
    perConnection(received.events, 1),
    perConnection(received.comments, 1),
    versus(idleRate),
    perConnection(result.reconnectRequests, 2),
    formatNumber(withReconnects(result), 3),
    versus(withReconnects),
  ];
}

function goals(results: Result[]): string[] {
  const line = (kind: Kind, goal: number) => {
    const result = results.find((candidate) => candidate.subject.kind === kind && candidate.subject.connections === 100);
    if (!result) return `${kind}: not measured`;
    const rate = idleRate(result);
    const pushed = result.atEnd.pushedMessages - result.atWindow.pushedMessages;
    const met = rate <= goal && pushed === 0;
    return (
      `${kind} at 100 connections: ${formatNumber(rate, 3)} requests/connection-minute (goal ≤ ${goal}), ` +
      `${pushed} pushed (goal 0): ${met ? 'MET' : 'MISSED'}; with reconnects ${formatNumber(withReconnects(result), 3)}: ` +
      `${withReconnects(result) <= goal ? 'MET' : 'MISSED'}`
    );
  };
  return [line('edge-sse subscribe', 0.01), line('edge-sse poll', 0.3)];
}

const PLAN: [Kind, number][] = [
  ['@upstash/realtime 1.1', 1],
  ['edge-sse subscribe', 1],
  ['edge-sse poll', 1],
  ['@upstash/realtime 1.1', 100],
  ['edge-sse subscribe', 100],
  ['edge-sse poll', 100],
  ['edge-sse subscribe, unshared readers', 100],
  ['edge-sse poll, unshared readers', 100],
];

export async function run(): Promise<void> {
  const subjects = await Promise.all(PLAN.map(([kind, connections]) => subject(kind, connections)));
  console.log(`\n(idle: ${subjects.length} subjects at once, ${SETTLE_MS / 1000} s settle + ${WINDOW_MS / 1000} s window…)`);
  try {
    const results = await measure(subjects);
    const reference = (connections: number) =>
      results.find((result) => result.subject.kind === '@upstash/realtime 1.1' && result.subject.connections === connections);
    printTable(
      `Idle cost through the bridge: 1 channel, nothing published, ${formatNumber(results[0]!.windowMs / 1000, 1)} s window (after connecting + ${SETTLE_MS / 1000} s)`,
      [
        'subject',
        'conns',
        'connect req/conn',
        'idle req/conn-min',
        'pushed',
        'subs open',
        'events/conn',
        'comments/conn',
        '÷ realtime',
        'reconnect req/conn',
        '+ reconnects req/conn-min',
        '÷ realtime',
      ],
      results.map((result) => row(result, reference(result.subject.connections))),
    );
    console.log(
      '\n"connect req/conn": Redis HTTP requests from opening until the window, per connection. "idle req/conn-min":\n' +
        'requests in the window per connection per minute. "pushed": messages the bridge wrote to /subscribe streams\n' +
        'in the window. "events/conn", "comments/conn": SSE frames each client read in the window (data frames vs\n' +
        'comment-only heartbeats). "reconnect req/conn": requests for ending and reopening every connection once, one\n' +
        'after the other (edge-sse with Last-Event-ID). "+ reconnects": idle rate plus one reconnection per mean stream\n' +
        `lifetime with default options (edge-sse ${LIFETIME_MIN.edge} min, realtime ${formatNumber(LIFETIME_MIN.realtime, 2)} min).\n` +
        '"÷ realtime": against realtime at the same number of connections.\n',
    );
    for (const line of goals(results)) console.log(line);
  } finally {
    await Promise.all(subjects.map((item) => item.bridge.close()));
    await cleanUp();
  }
}
