/**
 * Publish → receive latency through the bridge: one listener, one publisher, publishes spaced a
 * few ms apart (the next one after the previous arrived). The time runs from just before the
 * publish call until the listener's stream yields the event. Publisher and listener talk to
 * the same Redis through two bridges, so requests per publish are split into the publishing
 * side and the reading side.
 *
 * Subjects: @upstash/realtime's `emit` → its `handle()` stream (the reference), edge-sse's
 * `sendEvent` → `handler` in subscribe and poll mode, and floors: XADD then XREAD through the
 * bridge and over TCP, and one XADD+PUBLISH request pushed to a bridge /subscribe.
 */
import { Redis as IORedis } from 'ioredis';
import type { Bridge } from '../src/bridge/index.js';
import type { SSE } from '../src/index.js';
import { core, redis } from './subject.js';
import { EVENT_TYPE, makeEvents } from './events.js';
import {
  type Connection,
  type Mode,
  REDIS_URL,
  TOKEN,
  cleanUp,
  edgeSSE,
  openEdge,
  openRealtime,
  prefixFor,
  readFrames,
  realtimeOn,
  startBridge,
} from './redis-common.js';
import { percentile, sleep } from './stats.js';
import { type Cell, formatMs, formatNumber, formatRatio, printTable } from './table.js';

const ROUNDS = 3;
const SAMPLES_PER_ROUND = 120;
/** Poll mode answers within its 100-ms interval after news: fewer samples keep the run short. */
const POLL_SAMPLES_PER_ROUND = 30;
const WARM_UP = 10;
const ROUND_WARM_UP = 3;
const GAP_MS = [2, 6] as const;
const TIMEOUT_MS = 5000;
const CHANNEL = 'orders';
const SEQ = /"seq":(\d+)/;
const REFERENCE = '@upstash/realtime 1.1 emit';

const events = makeEvents(256);
const payload = (seq: number) => ({ ...events[seq % events.length]!.object, seq });

interface Running {
  publish(seq: number): Promise<unknown>;
  /** Where publishing and reading requests go, when through bridges. */
  bridges?: { publish: Bridge; listen: Bridge };
  close(): Promise<void>;
}

interface Subject {
  name: string;
  samplesPerRound: number;
  start(arrived: (seq: number) => void): Promise<Running>;
}

type Arrived = (seq: number) => void;

function seqIn(text: string, arrived: Arrived): void {
  const match = SEQ.exec(text);
  if (match) arrived(Number(match[1]));
}

async function bridgePair(allow: string[] = []): Promise<{ publish: Bridge; listen: Bridge }> {
  const [publish, listen] = await Promise.all([startBridge(allow), startBridge()]);
  return { publish, listen };
}

async function closeAll(connection: Connection | undefined, bridges: { publish: Bridge; listen: Bridge }): Promise<void> {
  connection?.close();
  await connection?.ended;
  await Promise.all([bridges.publish.close(), bridges.listen.close()]);
}

// ---- subjects ------------------------------------------------------------------------------

function realtime(): Subject {
  return {
    name: REFERENCE,
    samplesPerRound: SAMPLES_PER_ROUND,
    async start(arrived) {
      const bridges = await bridgePair();
      const channel = `${prefixFor('lat-rt')}${CHANNEL}`;
      const listener = openRealtime(realtimeOn(bridges.listen), channel, (frame) => seqIn(frame.text, arrived));
      await listener.ready;
      const publisher = realtimeOn(bridges.publish).channel(channel);
      return {
        bridges,
        publish: (seq) => publisher.emit('order.updated', payload(seq)),
        close: () => closeAll(listener, bridges),
      };
    },
  };
}

function edge(mode: Mode): Subject {
  return {
    name: `edge-sse ${mode} sendEvent`,
    samplesPerRound: mode === 'poll' ? POLL_SAMPLES_PER_ROUND : SAMPLES_PER_ROUND,
    async start(arrived) {
      const bridges = await bridgePair();
      const prefix = prefixFor(`lat-${mode}`);
      const listener = openEdge(edgeSSE(bridges.listen, prefix, mode), CHANNEL, (frame) => seqIn(frame.text, arrived));
      await listener.ready;
      const publisher = edgeSSE(bridges.publish, prefix, mode);
      return {
        bridges,
        publish: (seq) => publisher.sendEvent(EVENT_TYPE, payload(seq), { channel: CHANNEL }),
        close: () => closeAll(listener, bridges),
      };
    },
  };
}

/** edge-sse over TCP (edge-sse/redis, one blocking XREAD): not through the bridge, for context. */
function edgeTcp(): Subject {
  return {
    name: 'context: edge-sse redis (TCP) sendEvent',
    samplesPerRound: SAMPLES_PER_ROUND,
    async start(arrived) {
      const sse: SSE = core.createSSE({ backend: redis.redisBackend({ url: REDIS_URL, prefix: prefixFor('lat-tcp') }) });
      const listener = openEdge(sse, CHANNEL, (frame) => seqIn(frame.text, arrived));
      await listener.ready;
      return {
        publish: (seq) => sse.sendEvent(EVENT_TYPE, payload(seq), { channel: CHANNEL }),
        async close() {
          listener.close();
          await listener.ended;
          await sse.backend.close();
        },
      };
    },
  };
}

function xaddArgs(key: string, seq: number): string[] {
  return [key, 'MAXLEN', '~', '1000', '*', 'type', EVENT_TYPE, 'data', JSON.stringify(payload(seq)), 'json', '1'];
}

/** The last entry of an XREAD reply, `[[key, [[id, fields], …]]]`, as its id and fields' text. */
function lastEntry(reply: unknown): { id: string; text: string } | undefined {
  const entries = (reply as [string, [string, string[]][]][] | null)?.[0]?.[1];
  const last = entries?.at(-1);
  return last ? { id: last[0], text: last[1].join(' ') } : undefined;
}

async function pipelineOver(bridge: Bridge, commands: (string | number)[][]): Promise<unknown[]> {
  const response = await fetch(`${bridge.url}/pipeline`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify(commands),
  });
  const replies = (await response.json()) as { result?: unknown; error?: string }[];
  return replies.map((reply) => reply.result);
}

/** XADD, then XREAD after the previous id, through the bridge: two HTTP requests. */
function floorBridge(): Subject {
  return {
    name: 'floor: XADD then XREAD, bridge',
    samplesPerRound: SAMPLES_PER_ROUND,
    async start(arrived) {
      const bridges = await bridgePair();
      const key = `${prefixFor('lat-floor-http')}${CHANNEL}`;
      let after = '0-0';
      return {
        bridges,
        async publish(seq) {
          await pipelineOver(bridges.publish, [['XADD', ...xaddArgs(key, seq)]]);
          const [reply] = await pipelineOver(bridges.listen, [['XREAD', 'COUNT', 100, 'STREAMS', key, after]]);
          const entry = lastEntry(reply);
          if (!entry) return;
          after = entry.id;
          seqIn(entry.text, arrived);
        },
        close: () => closeAll(undefined, bridges),
      };
    },
  };
}

/** The same pair over TCP (ioredis, one connection each): two round trips. */
function floorTcp(): Subject {
  return {
    name: 'floor: XADD then XREAD, TCP',
    samplesPerRound: SAMPLES_PER_ROUND,
    async start(arrived) {
      const [writer, reader] = [new IORedis(REDIS_URL), new IORedis(REDIS_URL)];
      const key = `${prefixFor('lat-floor-tcp')}${CHANNEL}`;
      let after = '0-0';
      return {
        async publish(seq) {
          const [name, ...args] = xaddArgs(key, seq);
          await writer.xadd(name!, ...(args as [string]));
          const entry = lastEntry(await reader.xread('COUNT', 100, 'STREAMS', key, after));
          if (!entry) return;
          after = entry.id;
          seqIn(entry.text, arrived);
        },
        async close() {
          writer.disconnect();
          reader.disconnect();
        },
      };
    },
  };
}

/**
 * One request per publish with nothing to read: XADD + PUBLISH of the event itself in one
 * pipeline, the listener on a bridge /subscribe stream. The floor for a payload-carrying wake-up.
 */
function floorPush(): Subject {
  return {
    name: 'floor: XADD+PUBLISH pushed, bridge',
    samplesPerRound: SAMPLES_PER_ROUND,
    async start(arrived) {
      const bridges = await bridgePair();
      const key = `${prefixFor('lat-floor-push')}${CHANNEL}`;
      const aborter = new AbortController();
      const response = await fetch(`${bridges.listen.url}/subscribe/${key}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${TOKEN}`, Accept: 'text/event-stream' },
        signal: aborter.signal,
      });
      const reading = readFrames(response.body!, (frame) => seqIn(frame.text, arrived), aborter.signal);
      return {
        bridges,
        publish: (seq) =>
          pipelineOver(bridges.publish, [
            ['XADD', ...xaddArgs(key, seq)],
            ['PUBLISH', key, JSON.stringify(payload(seq))],
          ]),
        async close() {
          aborter.abort();
          await reading;
          await closeAll(undefined, bridges);
        },
      };
    },
  };
}

// ---- measuring -----------------------------------------------------------------------------

interface Tally {
  latencies: number[];
  samples: number;
  publishRequests: number;
  readRequests: number;
  pushed: number;
}

/** Routes arrivals to whichever sample is waiting for that seq. */
class Arrivals {
  private waiting = new Map<number, () => void>();

  readonly arrived: Arrived = (seq) => {
    this.waiting.get(seq)?.();
    this.waiting.delete(seq);
  };

  waitFor(seq: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`seq ${seq} did not arrive within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
      this.waiting.set(seq, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

let nextSeq = 1;

async function sample(running: Running, arrivals: Arrivals): Promise<number> {
  const seq = nextSeq++;
  const arrival = arrivals.waitFor(seq);
  const started = performance.now();
  const published = running.publish(seq);
  await arrival;
  const latency = performance.now() - started;
  await published;
  await sleep(GAP_MS[0] + Math.random() * (GAP_MS[1] - GAP_MS[0]));
  return latency;
}

/**
 * One subject's samples of a round, after a few unrecorded ones: the other subjects' rounds left
 * its HTTP sockets idle (closed after 4 s) and its poll interval backed off (see the README).
 */
async function measureRound(running: Running, arrivals: Arrivals, count: number, tally: Tally): Promise<void> {
  for (let index = 0; index < ROUND_WARM_UP; index++) await sample(running, arrivals);
  const before = running.bridges && { publish: running.bridges.publish.stats(), listen: running.bridges.listen.stats() };
  for (let index = 0; index < count; index++) tally.latencies.push(await sample(running, arrivals));
  tally.samples += count;
  if (!running.bridges || !before) return;
  const { publish, listen } = { publish: running.bridges.publish.stats(), listen: running.bridges.listen.stats() };
  tally.publishRequests += publish.requests - before.publish.requests;
  tally.readRequests += listen.requests - before.listen.requests;
  tally.pushed += listen.pushedMessages - before.listen.pushedMessages;
}

function row(name: string, tally: Tally, reference: Tally | undefined): Cell[] {
  const p50 = percentile(tally.latencies, 50);
  const p99 = percentile(tally.latencies, 99);
  const perPublish = (value: number) => (name.includes('TCP') ? '—' : formatNumber(value / tally.samples, 2));
  const versus = (mine: number, theirs: number) => (reference && reference !== tally ? formatRatio(mine / theirs) : '—');
  return [
    name,
    tally.samples,
    formatMs(p50),
    formatMs(p99),
    perPublish(tally.publishRequests),
    perPublish(tally.readRequests),
    perPublish(tally.pushed),
    versus(p50, reference ? percentile(reference.latencies, 50) : NaN),
    versus(p99, reference ? percentile(reference.latencies, 99) : NaN),
  ];
}

export async function run(): Promise<void> {
  const subjects = [realtime(), edge('subscribe'), edge('poll'), floorBridge(), floorPush(), floorTcp(), edgeTcp()];
  const arrivals = new Arrivals();
  const tallies = new Map<Subject, Tally>();
  const running = new Map<Subject, Running>();
  try {
    for (const subject of subjects) {
      const started = await subject.start(arrivals.arrived);
      running.set(subject, started);
      tallies.set(subject, { latencies: [], samples: 0, publishRequests: 0, readRequests: 0, pushed: 0 });
      for (let index = 0; index < WARM_UP; index++) await sample(started, arrivals);
    }
    for (let round = 0; round < ROUNDS; round++) {
      const order = subjects.map((_, index) => subjects[(index + round) % subjects.length]!);
      for (const subject of order) await measureRound(running.get(subject)!, arrivals, subject.samplesPerRound, tallies.get(subject)!);
    }
  } finally {
    for (const started of running.values()) await started.close();
    await cleanUp();
  }
  const reference = tallies.get(subjects[0]!);
  printTable(
    `Publish → receive latency, 1 listener, in process, publishes ${GAP_MS[0]}–${GAP_MS[1]} ms apart (${ROUNDS} rounds, rotating order)`,
    ['subject', 'samples', 'p50', 'p99', 'pub req/publish', 'read req/publish', 'pushed/publish', 'p50 ÷ realtime', 'p99 ÷ realtime'],
    subjects.map((subject) => row(subject.name, tallies.get(subject)!, reference)),
  );
  console.log(
    '\n"pub req/publish": HTTP requests at the publisher\'s bridge per publish; "read req/publish": at the listener\'s\n' +
      '(its open /subscribe is not counted again); "pushed/publish": pub/sub messages the listener\'s bridge pushed.\n' +
      'Floors read exactly what was added, nothing more: they are the cost of the round trips alone.',
  );
  const edgeP50 = percentile(tallies.get(subjects[1]!)!.latencies, 50);
  const goal = 0.75 * percentile(reference!.latencies, 50);
  console.log(
    `\nGoal: edge-sse subscribe p50 ≤ 0.75 × realtime's = ${formatMs(goal)}: ${formatMs(edgeP50)} → ${edgeP50 <= goal ? 'MET' : 'MISSED'}`,
  );
}
