/**
 * cluster — edge-sse/redis on a Redis Cluster of three masters beside one Redis, in the same run,
 * both redis-servers of this benchmark's own (same binary and settings, no persistence, no
 * replicas), all on this machine:
 *
 * - publish throughput: 50 `sendEvent` loops at once over 64 channels; and `sendEvents` batches of
 *   10 events on 10 channels (one script run per slot on the cluster, one in all on one Redis);
 * - publish → receive latency: one stream through the handler, one publisher, the next publish
 *   after the previous arrived; and the Redis requests per event (edge-sse's count).
 *
 * Then, on a cluster of three masters with a replica each: a stream and a publisher (one
 * `sendEvent` every 5 ms) while a master fails over (`CLUSTER FAILOVER` on its replica) and while
 * the channel's slot moves to another master: the longest time without a delivery, publishes that
 * failed, and acknowledged events lost (must be 0).
 */
import { type Connection, type Frame, openEdge } from './redis-common.js';
import { core, redis } from './subject.js';
import { EVENT_TYPE, makeEvents } from './events.js';
import { median, percentile, sleep } from './stats.js';
import { type Cell, formatMs, formatNumber, formatRatio, printTable } from './table.js';
import type { SSE } from '../src/index.js';
import { slotOfChannel } from '../src/backends/redis/cluster/slots.js';
import { type OwnCluster, startOwnCluster } from '../test/helpers/redis-cluster.js';
import { type OwnRedis, startOwnRedis } from '../test/helpers/redis-server.js';

const ROUNDS = 3;
const ROUND_MS = 3000;
const LOOPS = 50;
const CHANNELS = 64;
const BATCH_LOOPS = 10;
const BATCH = 10;
const LATENCY_SAMPLES = 100;
const WARM_UP = 10;
const TIMEOUT_MS = 5000;
const SEQ = /"seq":(\d+)/;

const events = makeEvents(256);
const payload = (seq: number) => ({ ...events[seq % events.length]!.object, seq });

interface Subject {
  name: string;
  sse: SSE;
}

function subjectOn(name: string, options: Parameters<typeof redis.redisBackend>[0]): Subject {
  return { name, sse: core.createSSE({ backend: redis.redisBackend({ prefix: 'bench:', ...options }), maxDurationMs: 3_600_000 }) };
}

// ---- throughput ----------------------------------------------------------------------------

/** Events stored per second by `loops` publish loops running for ROUND_MS. */
async function throughput(loops: number, publishOnce: (loop: number, round: number) => Promise<number>): Promise<number> {
  let stored = 0;
  let running = true;
  const started = performance.now();
  const workers = Array.from({ length: loops }, async (_, loop) => {
    for (let round = 0; running; round++) {
      const count = await publishOnce(loop, round); // (not `stored += await …`: that reads `stored` before waiting)
      stored += count;
    }
  });
  await sleep(ROUND_MS);
  running = false;
  await Promise.all(workers);
  return (stored / (performance.now() - started)) * 1000;
}

const single = (subject: Subject) => (loop: number, round: number) =>
  subject.sse.sendEvent(EVENT_TYPE, payload(round), { channel: `c${(loop * 7 + round) % CHANNELS}` }).then(() => 1);

const batch = (subject: Subject) => (loop: number, round: number) => {
  const list = Array.from({ length: BATCH }, (_, index) => ({
    type: EVENT_TYPE,
    data: payload(round),
    channel: `b${(loop + index) % CHANNELS}`,
  }));
  return subject.sse.sendEvents(list).then((ids) => ids.length);
};

async function throughputTable(subjects: Subject[]): Promise<void> {
  const rates = new Map<string, number[]>();
  const record = (key: string, rate: number) => rates.set(key, [...(rates.get(key) ?? []), rate]);
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? subjects : [...subjects].reverse();
    for (const subject of order) {
      record(`${subject.name}|single`, await throughput(LOOPS, single(subject)));
      record(`${subject.name}|batch`, await throughput(BATCH_LOOPS, batch(subject)));
    }
  }
  const rows: Cell[][] = [];
  for (const [kind, label] of [
    ['single', `sendEvent, ${LOOPS} at once, ${CHANNELS} channels`],
    ['batch', `sendEvents of ${BATCH} on ${BATCH} channels, ${BATCH_LOOPS} at once`],
  ] as const) {
    const reference = median(rates.get(`${subjects[0]!.name}|${kind}`)!);
    for (const subject of subjects) {
      const list = rates.get(`${subject.name}|${kind}`)!;
      rows.push([
        `${subject.name}: ${label}`,
        formatNumber(median(list)),
        `${formatNumber(Math.min(...list))}–${formatNumber(Math.max(...list))}`,
        subject === subjects[0] ? '—' : formatRatio(median(list) / reference),
      ]);
    }
  }
  printTable(
    `Publish throughput, events/s (${ROUNDS} rounds of ${ROUND_MS / 1000} s, median and min–max)`,
    ['subject', 'events/s', 'min–max', 'vs one Redis'],
    rows,
  );
}

// ---- latency -------------------------------------------------------------------------------

async function latency(subject: Subject): Promise<{ samples: number[]; requestsPerEvent: number }> {
  const waiting = new Map<number, () => void>();
  const listener = openEdge(subject.sse, 'orders', (frame: Frame) => {
    const match = SEQ.exec(frame.text);
    if (match) waiting.get(Number(match[1]))?.();
  });
  await listener.ready;
  const samples: number[] = [];
  let seq = 0;
  let requestsBefore = 0;
  for (let index = 0; index < WARM_UP + LATENCY_SAMPLES; index++) {
    if (index === WARM_UP) requestsBefore = subject.sse.backend.stats().requests;
    const mine = ++seq;
    const arrived = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${subject.name}: seq ${mine} did not arrive`)), TIMEOUT_MS);
      waiting.set(mine, () => {
        clearTimeout(timer);
        waiting.delete(mine);
        resolve();
      });
    });
    const started = performance.now();
    const published = subject.sse.sendEvent(EVENT_TYPE, payload(mine), { channel: 'orders' });
    await arrived;
    if (index >= WARM_UP) samples.push(performance.now() - started);
    await published;
    await sleep(2 + Math.random() * 4);
  }
  const requestsPerEvent = (subject.sse.backend.stats().requests - requestsBefore) / LATENCY_SAMPLES;
  listener.close();
  await listener.ended;
  return { samples, requestsPerEvent };
}

async function latencyTable(subjects: Subject[]): Promise<void> {
  const samples = new Map<Subject, number[]>();
  const requests = new Map<Subject, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const subject of round % 2 === 0 ? subjects : [...subjects].reverse()) {
      const result = await latency(subject);
      samples.set(subject, [...(samples.get(subject) ?? []), ...result.samples]);
      requests.set(subject, [...(requests.get(subject) ?? []), result.requestsPerEvent]);
    }
  }
  const [reference] = subjects as [Subject];
  printTable(
    `Publish → receive through the handler (${ROUNDS} × ${LATENCY_SAMPLES} samples)`,
    ['subject', 'p50', 'p99', 'requests/event', 'p50 vs one Redis', 'p99 vs one Redis'],
    subjects.map((subject) => {
      const list = samples.get(subject)!;
      const versus = (p: number) =>
        subject === reference ? '—' : formatRatio(percentile(list, p) / percentile(samples.get(reference)!, p));
      return [
        subject.name,
        formatMs(percentile(list, 50)),
        formatMs(percentile(list, 99)),
        formatNumber(median(requests.get(subject)!), 2),
        versus(50),
        versus(99),
      ];
    }),
  );
}

// ---- failover and a slot moving ------------------------------------------------------------

interface Disruption {
  name: string;
  act(cluster: OwnCluster, slot: number): Promise<unknown>;
}

const DISRUPTIONS: Disruption[] = [
  { name: 'nothing (the baseline)', act: () => sleep(300) },
  { name: 'master fails over (CLUSTER FAILOVER)', act: (cluster, slot) => cluster.failOver(slot) },
  {
    name: 'slot moves to another master (MIGRATE)',
    async act(cluster, slot) {
      const from = await cluster.masterOf(slot);
      const to = (await cluster.masters()).find((node) => node !== from)!;
      await cluster.moveSlot(slot, to);
    },
  },
];

/** A stream that reconnects from its last id whenever it ends, recording when each seq arrived. */
function resumingStream(sse: SSE, channel: string, arrivals: Map<number, number>) {
  let connection: Connection;
  let lastId: string | undefined;
  let stopped = false;
  let streams = 0;
  const onFrame = (frame: Frame) => {
    const id = /^id: ?(.*)$/m.exec(frame.text)?.[1];
    if (id) lastId = id;
    const match = SEQ.exec(frame.text);
    if (match && !arrivals.has(Number(match[1]))) arrivals.set(Number(match[1]), performance.now());
  };
  const open = () => {
    streams++;
    connection = openEdge(sse, channel, onFrame, lastId);
    void connection.ended.then(() => {
      if (!stopped) void open();
    });
    return connection.ready;
  };
  return {
    ready: open(),
    streams: () => streams,
    stop() {
      stopped = true;
      connection.close();
    },
  };
}

async function disruption(cluster: OwnCluster, disruption: Disruption): Promise<Cell[]> {
  const sse = core.createSSE({
    backend: redis.redisBackend({ cluster: cluster.urls, prefix: 'bench:', timeoutMs: 5000 }),
    maxDurationMs: 3_600_000,
  });
  const channel = `disrupted-${DISRUPTIONS.indexOf(disruption)}`;
  const arrivals = new Map<number, number>();
  const stream = resumingStream(sse, channel, arrivals);
  await stream.ready;
  const acknowledged: number[] = [];
  let failed = 0;
  let slowest = 0;
  let running = true;
  const publishing = (async () => {
    for (let seq = 1; running; seq++) {
      const started = performance.now();
      await sse.sendEvent(EVENT_TYPE, payload(seq), { channel }).then(
        () => acknowledged.push(seq),
        () => failed++,
      );
      slowest = Math.max(slowest, performance.now() - started);
      await sleep(5);
    }
  })();
  await sleep(1000);
  const began = performance.now();
  await disruption.act(cluster, slotOfChannel(channel));
  const took = performance.now() - began;
  await sleep(1500);
  running = false;
  await publishing;
  const deadline = Date.now() + 15_000;
  while (acknowledged.some((seq) => !arrivals.has(seq)) && Date.now() < deadline) await sleep(20);
  stream.stop();
  const times = [...arrivals.values()].sort((a, b) => a - b);
  let gap = 0;
  for (let index = 1; index < times.length; index++) gap = Math.max(gap, times[index]! - times[index - 1]!);
  const lost = acknowledged.filter((seq) => !arrivals.has(seq)).length;
  await sse.backend.close();
  return [disruption.name, formatMs(took), formatMs(gap), formatMs(slowest), acknowledged.length, failed, lost, stream.streams()];
}

// ---- run -----------------------------------------------------------------------------------

export async function run(): Promise<void> {
  let own: OwnRedis | undefined;
  let cluster: OwnCluster | undefined;
  let replicated: OwnCluster | undefined;
  const subjects: Subject[] = [];
  try {
    [own, cluster] = await Promise.all([startOwnRedis(), startOwnCluster({ masters: 3 })]);
    subjects.push(subjectOn('one Redis', { url: own.url }), subjectOn('cluster, 3 masters', { cluster: cluster.urls }));
    for (const subject of subjects) await subject.sse.sendEvent(EVENT_TYPE, payload(0), { channel: 'warm' });
    await throughputTable(subjects);
    await latencyTable(subjects);
    for (const subject of subjects) await subject.sse.backend.close();
    await Promise.all([own.dispose(), cluster.dispose()]);
    own = cluster = undefined;

    replicated = await startOwnCluster({ masters: 3, replicas: 1 });
    const rows: Cell[][] = [];
    for (const each of DISRUPTIONS) rows.push(await disruption(replicated, each));
    printTable(
      'While publishing every 5 ms to a stream on the cluster (3 masters, a replica each)',
      ['what happens', 'it took', 'longest without delivery', 'slowest publish', 'acknowledged', 'failed', 'lost', 'streams'],
      rows,
    );
  } finally {
    await Promise.all([own?.dispose(), cluster?.dispose(), replicated?.dispose()]);
  }
}
