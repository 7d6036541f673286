/**
 * Redis connections the bridge holds for many subscription streams: 300 `/subscribe` streams on
 * 30 channels (10 listeners each), counted with `CLIENT LIST` on a redis-server of its own (so
 * no other client of the shared Redis is counted). Each stream must also receive one message
 * published on its channel, so the count is taken while every subscription is live.
 */
import { Redis as IORedis } from 'ioredis';
import { createBridge } from '../src/bridge/index.js';
import { startOwnRedis } from '../test/helpers/redis-server.js';
import { type Frame, TOKEN, readFrames } from './redis-common.js';
import { printTable } from './table.js';

const CHANNELS = 30;
const LISTENERS_PER_CHANNEL = 10;
const TIMEOUT_MS = 20_000;

interface Stream {
  confirmed: Promise<void>;
  received: Promise<void>;
  close(): void;
}

function openStream(url: string, channel: string): Stream {
  const aborter = new AbortController();
  let confirm!: () => void;
  let receive!: () => void;
  const confirmed = new Promise<void>((resolve) => (confirm = resolve));
  const received = new Promise<void>((resolve) => (receive = resolve));
  const onFrame = (frame: Frame) => {
    if (frame.text.startsWith('data: subscribe,')) confirm();
    if (frame.text.startsWith('data: message,')) receive();
  };
  void fetch(`${url}/subscribe/${channel}`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` }, signal: aborter.signal })
    .then((response) => readFrames(response.body!, onFrame, aborter.signal))
    .catch(() => undefined);
  return { confirmed: withTimeout(confirmed, 'confirmation'), received: withTimeout(received, 'message'), close: () => aborter.abort() };
}

function withTimeout(promise: Promise<void>, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    void promise.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Connections other than the counting one (and other bench/monitoring clients: none on this server). */
async function bridgeConnections(counter: IORedis): Promise<number> {
  const list = (await counter.client('LIST')) as string;
  return list.trim().split('\n').filter(Boolean).length - 1;
}

export async function run(): Promise<void> {
  const server = await startOwnRedis();
  const counter = new IORedis(server.url);
  const bridge = await createBridge({ token: TOKEN, redis: server.url });
  const rows: (string | number)[][] = [];
  try {
    await fetch(`${bridge.url}/`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` }, body: '["PING"]' });
    rows.push(['bridge started, one command run', await bridgeConnections(counter)]);
    const channels = Array.from({ length: CHANNELS }, (_, index) => `bench-conn-${index}`);
    const streams = channels.flatMap((channel) => Array.from({ length: LISTENERS_PER_CHANNEL }, () => openStream(bridge.url, channel)));
    await Promise.all(streams.map((stream) => stream.confirmed));
    rows.push([`${streams.length} subscriptions on ${CHANNELS} channels, confirmed`, await bridgeConnections(counter)]);
    for (const channel of channels) await counter.publish(channel, 'hello');
    await Promise.all(streams.map((stream) => stream.received));
    rows.push(['… each received one message', await bridgeConnections(counter)]);
    for (const stream of streams) stream.close();
    const idle = async () =>
      (await counter.pubsub('NUMSUB', ...channels)).filter((_, index) => index % 2 === 1).every((count) => Number(count) === 0);
    while (!(await idle())) await new Promise((resolve) => setTimeout(resolve, 50));
    rows.push(['all streams closed', await bridgeConnections(counter)]);
  } finally {
    await bridge.close();
    counter.disconnect();
    await server.dispose();
  }
  printTable('Redis connections held by the bridge (CLIENT LIST on a redis-server of its own)', ['moment', 'connections'], rows);
}
