/**
 * The client side of the scale benchmark, run in its own process (`bench/scale.ts` spawns it):
 * raw `net` sockets on loopback, one hand-written `GET` each, no HTTP parser. It only looks for
 * the benchmark's `"seq":N` in what arrives and timestamps the first arrival of each seq per
 * socket, so the client side costs a few µs per chunk, the same for every server.
 *
 * Driven over IPC by the parent; every reply carries the command's `id`. Times are
 * `performance.timeOrigin + performance.now()` (epoch ms, sub-ms); the parent converts them to
 * its own clock with the offset it measured through `clock`.
 */
import { type Socket, connect } from 'node:net';
import type { ClientCommand, ClientReply } from './scale-protocol.js';

const SEQ = /"seq":(\d+)[,}]/g;
/** Enough of the previous chunk to complete a `"seq":N` split between two chunks. */
const CARRY = 24;

interface Connection {
  socket: Socket;
  /** Got the status line; `ok` when it was 200. */
  answered: boolean;
  ok: boolean;
  carry: string;
  /** Highest seq seen (events arrive in order). */
  seen: number;
}

const connections: Connection[] = [];
/** The seq being timed, its arrival times per connection (NaN until it arrives) and how many arrived. */
let expecting = -1;
let arrivals = new Float64Array(0);
let arrived = 0;
/** Connections that were open (answered 200, not closed) when the watch began. */
let expected = 0;
let onAllArrived: (() => void) | undefined;

const now = () => performance.timeOrigin + performance.now();

function reply(message: ClientReply): void {
  process.send!(message);
}

function onData(connection: Connection, index: number, chunk: Buffer): void {
  const text = connection.carry + chunk.toString('latin1');
  if (!connection.answered) {
    connection.answered = true;
    connection.ok = text.startsWith('HTTP/1.1 200');
    countAnswer();
  }
  SEQ.lastIndex = 0;
  let match: RegExpExecArray | null;
  while ((match = SEQ.exec(text)) !== null) {
    const seq = Number(match[1]);
    if (seq <= connection.seen) continue; // the carried tail matched again
    connection.seen = seq;
    if (seq === expecting && Number.isNaN(arrivals[index]!)) {
      arrivals[index] = now();
      if (++arrived === expected) onAllArrived?.();
    }
  }
  connection.carry = text.length > CARRY ? text.slice(-CARRY) : text;
}

let answers = 0;
let onAnswers: (() => void) | undefined;
function countAnswer(): void {
  answers++;
  onAnswers?.();
}

/** Opens `count` sockets, at most `inFlight` waiting for their status line at once. */
async function open(
  count: number,
  port: number,
  path: string,
  sourceAddresses: string[],
  inFlight: number,
  stall: boolean,
  deadline: number,
): Promise<{ opened: number; failed: number }> {
  const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
  const target = answers + count;
  let started = 0;
  let failed = 0;
  const first = connections.length;
  await new Promise<void>((resolve) => {
    const pump = () => {
      if (answers + failed >= target || now() > deadline) {
        onAnswers = undefined;
        return resolve();
      }
      while (started < count && started - (answers - (target - count)) - failed < inFlight) {
        const index = first + started++;
        const socket = connect({
          host: '127.0.0.1',
          port,
          localAddress: sourceAddresses[index % sourceAddresses.length],
          noDelay: true,
        });
        const connection: Connection = { socket, answered: false, ok: false, carry: '', seen: -1 };
        connections.push(connection);
        socket.on('error', () => {
          if (!connection.answered) {
            connection.answered = true;
            failed++;
            pump();
          }
        });
        socket.once('connect', () => socket.write(request));
        if (stall) {
          // Read the status line, then stop reading: the kernel buffers fill, then the server's.
          socket.once('data', (chunk: Buffer) => {
            socket.pause();
            onData(connection, index, chunk);
          });
        } else {
          socket.on('data', (chunk: Buffer) => onData(connection, index, chunk));
        }
      }
    };
    onAnswers = pump;
    pump();
    const timer = setInterval(() => {
      if (now() > deadline) {
        clearInterval(timer);
        pump();
      }
      if (onAnswers === undefined) clearInterval(timer);
    }, 200);
  });
  const opened = connections.slice(first).filter((connection) => connection.ok).length;
  return { opened, failed: count - opened };
}

/** Waits until every open connection has seen `seq`, or `timeoutMs`; returns arrival times. */
function expect(seq: number, timeoutMs: number): Promise<Float64Array> {
  return new Promise((resolve) => {
    const timer = setTimeout(finish, timeoutMs);
    function finish() {
      if (process.env.BENCH_SCALE_DEBUG) console.error(`client: seq ${seq}: ${arrived}/${expected}`);
      clearTimeout(timer);
      onAllArrived = undefined;
      resolve(arrivals);
    }
    onAllArrived = finish;
    if (arrived >= expected) finish();
  });
}

function startExpecting(seq: number): void {
  expecting = seq;
  arrivals = new Float64Array(connections.length).fill(NaN);
  arrived = 0;
  expected = openCount();
}

function openCount(): number {
  let open = 0;
  for (const connection of connections) if (connection.ok && !connection.socket.destroyed) open++;
  return open;
}

process.on('message', (message: ClientCommand) => {
  const { id } = message;
  switch (message.type) {
    case 'clock':
      return reply({ id, type: 'clock', now: now() });
    case 'open':
      void open(
        message.count,
        message.port,
        message.path,
        message.sourceAddresses,
        message.inFlight,
        message.stall ?? false,
        now() + message.timeoutMs,
      ).then((result) => reply({ id, type: 'opened', ...result, total: connections.length }));
      return;
    case 'watch':
      startExpecting(message.seq);
      return reply({ id, type: 'watching' });
    case 'wait':
      void expect(message.seq, message.timeoutMs).then((times) =>
        reply({ id, type: 'arrivals', seq: message.seq, times: Array.from(times) }),
      );
      return;
    case 'count':
      return reply({ id, type: 'count', open: openCount(), total: connections.length });
    case 'close':
      for (const connection of connections) connection.socket.destroy();
      reply({ id, type: 'closed' });
      setTimeout(() => process.exit(0), 50);
      return;
  }
});

process.on('disconnect', () => process.exit(0));
