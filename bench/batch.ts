/**
 * Batch publishing throughput: `sse.sendEvents([...1000 events])` through the bridge, one batch
 * after another, against pipelined XADD straight to Redis (ioredis), the reference being what
 * `redis-benchmark -c 50 -P 50` does: 50 connections, each with pipelines of 50 in flight.
 * Every XADD is the one edge-sse sends: MAXLEN ~ 1000, fields type/data/json, ~120-byte JSON.
 * If /usr/bin/redis-benchmark exists it gets extra rows (the same command, and a tiny entry).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { Redis as IORedis } from 'ioredis';
import type { Bridge } from '../src/bridge/index.js';
import type { EventInput, SSE } from '../src/index.js';
import { core, redis, upstash } from './subject.js';
import { EVENT_TYPE, makeEvents } from './events.js';
import { REDIS_URL, TOKEN, cleanUp, edgeSSE, prefixFor, startBridge } from './redis-common.js';
import { median } from './stats.js';
import { type Cell, formatNumber, formatRatio, printTable } from './table.js';

const ROUNDS = 3;
/** Each subject publishes for about this long per round (after one WARM_UP_MS run). */
const RUN_MS = 1200;
const WARM_UP_MS = 300;
const BATCH = 1000;
const REDIS_BENCHMARK = '/usr/bin/redis-benchmark';
const REFERENCE = 'XADD pipelined, 50 clients × 50 (ioredis)';

const events = makeEvents(BATCH);
const batch: EventInput[] = events.map((event) => ({ type: EVENT_TYPE, data: event.object, channel: 'batch' }));

interface Subject {
  name: string;
  /** Publishes for about `ms`; resolves to events per second. */
  measure(ms: number): Promise<number>;
  close(): Promise<void>;
}

/** Runs `workers` loops of `step(worker)` (each returning how many events it wrote) for `ms`. */
async function rate(ms: number, workers: number, step: (worker: number) => Promise<number>): Promise<number> {
  let written = 0;
  const started = performance.now();
  const until = started + ms;
  const loop = async (worker: number) => {
    while (performance.now() < until) {
      const count = await step(worker); // not `written += await step()`: that reads `written` before awaiting
      written += count;
    }
  };
  await Promise.all(Array.from({ length: workers }, (_, worker) => loop(worker)));
  return written / ((performance.now() - started) / 1000);
}

// ---- edge-sse ------------------------------------------------------------------------------

async function edgeBridge(inFlight: number): Promise<Subject> {
  const bridge: Bridge = await startBridge();
  const sse = edgeSSE(bridge, prefixFor(`batch-http-${inFlight}`));
  return {
    name: `edge-sse sendEvents ×${BATCH}, bridge, ${inFlight} in flight`,
    measure: (ms) => rate(ms, inFlight, async () => (await sse.sendEvents(batch)).length),
    close: () => bridge.close(),
  };
}

function edgeTcp(): Subject {
  const sse: SSE = core.createSSE({ backend: redis.redisBackend({ url: REDIS_URL, prefix: prefixFor('batch-tcp') }) });
  return {
    name: `context: edge-sse sendEvents ×${BATCH}, redis (TCP)`,
    measure: (ms) => rate(ms, 1, async () => (await sse.sendEvents(batch)).length),
    close: () => sse.backend.close(),
  };
}

/** The bridge as it is deployed: its own process (here started from source with tsx). */
async function edgeSeparateBridge(): Promise<Subject> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bridge/cli.ts', '--token', TOKEN, '--port', '0', '--redis', REDIS_URL], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the bridge exited (${code})`)));
    child.stdout.on('data', (chunk: Buffer) => {
      const match = /listening on (http:\S+)/.exec(String(chunk));
      if (match) resolve(match[1]!);
    });
  });
  const sse = core.createSSE({ backend: upstash.upstashBackend({ url, token: TOKEN, prefix: prefixFor('batch-own') }) });
  return {
    name: `breakdown: edge-sse sendEvents ×${BATCH}, bridge in its own process`,
    measure: (ms) => rate(ms, 1, async () => (await sse.sendEvents(batch)).length),
    async close() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** edge-sse's own side alone: fetch answers at once with the reply Redis would give (the script's ids). */
function edgeCanned(): Subject {
  const ids = batch.map((_, index) => `1732780000000-${index}`);
  // The publish script's reply: {repeated, app id, previous heads, the ids} (redis-streams/commands/publish.ts).
  const reply = JSON.stringify([{ result: [0, '', '0-0', ...ids] }]);
  const fetcher: typeof fetch = async () => new Response(reply, { headers: { 'Content-Type': 'application/json' } });
  const sse = core.createSSE({
    backend: upstash.upstashBackend({ url: 'http://canned.invalid', token: TOKEN, prefix: 'canned:', fetch: fetcher }),
  });
  return {
    name: `breakdown: edge-sse sendEvents ×${BATCH}, canned reply (no I/O)`,
    measure: (ms) => rate(ms, 1, async () => (await sse.sendEvents(batch)).length),
    close: async () => undefined,
  };
}

// ---- straight to Redis ---------------------------------------------------------------------

function xaddArgs(key: string, index: number): string[] {
  const event = events[index % events.length]!;
  return [key, 'MAXLEN', '~', '1000', '*', 'type', EVENT_TYPE, 'data', event.json, 'json', '1'];
}

function pipelined(clients: number, size: number, name: string): Subject {
  const connections = Array.from({ length: clients }, () => new IORedis(REDIS_URL));
  const key = `${prefixFor(`batch-p${size}-c${clients}`)}batch`;
  const commands = Array.from({ length: size }, (_, index) => ['xadd', ...xaddArgs(key, index)]);
  return {
    name,
    measure: (ms) =>
      rate(ms, clients, async (worker) => {
        await connections[worker]!.pipeline(commands).exec();
        return size;
      }),
    async close() {
      for (const connection of connections) connection.disconnect();
    },
  };
}

/** redis-benchmark's own figure for `args`, 50 clients × pipelines of 50; ~`perMs` XADDs per ms. */
function redisBenchmark(name: string, args: string[], perMs: number): Subject {
  return {
    name,
    async measure(ms) {
      const requests = Math.round(ms * perMs);
      const options = ['-h', '127.0.0.1', '-p', '6379', '-c', '50', '-P', '50', '-n', String(requests), '-q'];
      const { stdout } = await promisify(execFile)(REDIS_BENCHMARK, [...options, ...args]);
      const match = /([\d.]+) requests per second/.exec(stdout.replace(/\r/g, '\n'));
      if (!match) throw new Error(`Unexpected redis-benchmark output: ${stdout.slice(-200)}`);
      return Number(match[1]);
    },
    close: async () => undefined,
  };
}

function binaryRows(): Subject[] {
  if (!existsSync(REDIS_BENCHMARK)) return [];
  const key = (name: string) => `${prefixFor(name)}batch`;
  return [
    redisBenchmark('extra: redis-benchmark -c 50 -P 50, same XADD', ['XADD', ...xaddArgs(key('batch-rb'), 0)], 400),
    redisBenchmark(
      'extra: redis-benchmark -c 50 -P 50, tiny entry',
      ['XADD', key('batch-rb-tiny'), 'MAXLEN', '~', '1000', '*', 'f', 'v'],
      500,
    ),
  ];
}

// ---- table ---------------------------------------------------------------------------------

function row(name: string, rates: number[], reference: number): Cell[] {
  const value = median(rates);
  return [
    name,
    formatNumber(value),
    `${formatNumber(Math.min(...rates))}–${formatNumber(Math.max(...rates))}`,
    name === REFERENCE ? '—' : formatRatio(value / reference),
  ];
}

export async function run(): Promise<void> {
  const subjects = [
    pipelined(50, 50, REFERENCE),
    pipelined(1, 50, 'XADD pipelined, 1 client × 50 (ioredis)'),
    pipelined(1, BATCH, `XADD pipelined, 1 client × ${BATCH} (ioredis)`),
    ...binaryRows(),
    await edgeBridge(1),
    await edgeBridge(4),
    await edgeSeparateBridge(),
    edgeCanned(),
    edgeTcp(),
  ];
  const rates = new Map<Subject, number[]>(subjects.map((subject) => [subject, []]));
  try {
    for (const subject of subjects) await subject.measure(WARM_UP_MS);
    for (let round = 0; round < ROUNDS; round++) {
      for (let index = 0; index < subjects.length; index++) {
        const subject = subjects[(index + round) % subjects.length]!;
        rates.get(subject)!.push(await subject.measure(RUN_MS));
      }
    }
  } finally {
    await Promise.all(subjects.map((subject) => subject.close()));
    await cleanUp();
  }
  const reference = median(rates.get(subjects[0]!)!);
  printTable(
    `Batch publishing throughput, ~${RUN_MS / 1000} s per run, ${ROUNDS} rounds (median, min–max), XADD MAXLEN ~ 1000, ~120-byte JSON`,
    ['publisher', 'events/s', 'min–max', '÷ reference'],
    subjects.map((subject) => row(subject.name, rates.get(subject)!, reference)),
  );
  console.log(
    `\n"÷ reference": events/s ÷ ${REFERENCE} (what redis-benchmark -c 50 -P 50 does, from Node).\n` +
      'breakdown rows split the in-process figure: the bridge alone in its own process, and edge-sse alone (no I/O).',
  );
  const rateOf = (part: string) => {
    const subject = subjects.find((candidate) => candidate.name.includes(part));
    return subject ? median(rates.get(subject)!) : NaN;
  };
  const binary = rateOf('redis-benchmark -c 50 -P 50, same XADD');
  const verdict = (edge: number, against: number) => `${formatRatio(edge / against)} → ${edge >= 0.2 * against ? 'MET' : 'MISSED'}`;
  console.log(`\nGoal: edge-sse sendEvents through the bridge ≥ 0.2 × pipelined XADD straight to Redis:`);
  for (const inFlight of [1, 4]) {
    const edge = rateOf(`bridge, ${inFlight} in flight`);
    const label = `${inFlight} batch${inFlight > 1 ? 'es' : ''} in flight`;
    console.log(
      `  ${label}, against redis-benchmark -P 50 (same XADD): ${Number.isFinite(binary) ? verdict(edge, binary) : 'n/a (no binary)'}`,
    );
    console.log(`  ${label}, against its ioredis replica in Node:       ${verdict(edge, reference)}`);
  }
}
