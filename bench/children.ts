/**
 * The processes of the multi-process benchmarks (`scale`, `paths`): a server per contender and the
 * raw-socket client (`scale-client.ts`), driven over Node's IPC channel (which Bun and Deno speak
 * too), with the clock offsets that let latencies be measured across processes. Also what the
 * drivers share: opening connections, timing one broadcast, and a process's CPU time from /proc.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ClientReply, ClientRequest, ServerReady, ServerReply, ServerRequest } from './scale-protocol.js';

/** Soft file limit for the children (the hard limit is 20,000 here). */
const FILE_LIMIT = 20_000;
/** Connections waiting for their status line at once (the listen backlog is 511 by default). */
const IN_FLIGHT = 256;
const OPEN_TIMEOUT_MS = 120_000;
const DELIVERY_TIMEOUT_MS = 30_000;

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const now = () => performance.timeOrigin + performance.now();

type Reply = { id: number; type: string };

/** A child process driven over IPC: `call` sends a command and resolves to the reply with its id. */
class Child<Command extends { type: string }, Answer extends Reply> {
  private nextId = 1;
  private waiting = new Map<number, { resolve: (reply: Answer) => void; reject: (error: Error) => void }>();
  private exited: Promise<void>;
  /** Child clock minus ours, ms. */
  offset = 0;

  constructor(
    readonly name: string,
    readonly process: ChildProcess,
    onMessage?: (message: unknown) => void,
  ) {
    process.on('message', (message: Answer) => {
      const waiter = this.waiting.get(message.id);
      if (waiter) {
        this.waiting.delete(message.id);
        waiter.resolve(message);
      } else onMessage?.(message);
    });
    this.exited = new Promise((resolve) => {
      process.once('exit', (code, signal) => {
        for (const waiter of this.waiting.values()) waiter.reject(new Error(`${name} exited (${code ?? signal})`));
        this.waiting.clear();
        resolve();
      });
    });
  }

  call<Type extends Answer['type']>(command: Command, timeoutMs = 30_000): Promise<Extract<Answer, { type: Type }>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: no reply to ${JSON.stringify(command).slice(0, 80)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply as Extract<Answer, { type: Type }>);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.process.send({ ...command, id });
    });
  }

  /** Estimates the child's clock offset from the fastest of `samples` round trips. */
  async syncClock(samples = 20): Promise<void> {
    let best = Infinity;
    for (let index = 0; index < samples; index++) {
      const sent = now();
      const { now: theirs } = (await this.call({ type: 'clock' } as Command)) as unknown as { now: number };
      const received = now();
      if (received - sent < best) {
        best = received - sent;
        this.offset = theirs - (sent + received) / 2;
      }
    }
  }

  /** Asks it to close, then kills it if it has not exited within a few seconds. */
  async stop(): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    await this.call({ type: 'close' } as Command, 10_000).catch(() => undefined);
    const killer = setTimeout(() => this.process.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(killer);
  }
}

export type Server = Child<ServerRequest, ServerReply>;
export type Client = Child<ClientRequest, ClientReply>;

/** `command ...args` with the soft file limit raised, and an IPC channel; `exec`, so the pid is the command's. */
export function spawnWithIpc(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const shell = `ulimit -n ${FILE_LIMIT} 2>/dev/null || ulimit -n $(ulimit -Hn); exec "$0" "$@"`;
  return spawn('bash', ['-c', shell, command, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT, env });
}

/** `node --expose-gc --import tsx <script>` (a TypeScript file of bench/). */
export function spawnNode(script: string, args: string[]): ChildProcess {
  return spawnWithIpc(process.execPath, ['--expose-gc', '--import', 'tsx', here(script), ...args]);
}

/** Wraps a spawned server process and waits for its `listening` message. */
export async function startServerProcess(
  name: string,
  child: ChildProcess,
): Promise<{ server: Server; port: number; path: string; runtime?: string }> {
  let listening!: (ready: ServerReady) => void;
  const ready = new Promise<ServerReady>((resolve) => (listening = resolve));
  const server: Server = new Child(`server (${name})`, child, (message) => {
    if ((message as ServerReady).type === 'listening') listening(message as ServerReady);
  });
  const failed = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${name}: server exited (${code})`))));
  const { port, path, runtime } = await Promise.race([ready, failed]);
  await server.syncClock();
  return { server, port, path, runtime };
}

export async function startClient(): Promise<Client> {
  const client: Client = new Child('client', spawnNode('scale-client.ts', []));
  await client.syncClock();
  return client;
}

let nextSeq = 1;

/** Arrival times cross IPC as JSON: a connection that never got the event has null (NaN). */
export const arrivedAt = (time: number | null): time is number => typeof time === 'number' && !Number.isNaN(time);

export interface Broadcast {
  delivered: number;
  latencies: number[];
}

/** Publishes one event and collects every open connection's latency (ms, publish → read). */
export async function broadcast(server: Server, client: Client, padBytes?: number): Promise<Broadcast> {
  const seq = nextSeq++;
  await client.call({ type: 'watch', seq });
  const { at } = await server.call<'published'>({ type: 'publish', seq, padBytes });
  const { times } = await client.call<'arrivals'>({ type: 'wait', seq, timeoutMs: DELIVERY_TIMEOUT_MS }, DELIVERY_TIMEOUT_MS + 5000);
  const published = at - server.offset;
  const latencies = times.filter(arrivedAt).map((time) => time - client.offset - published);
  return { delivered: latencies.length, latencies };
}

/** A seq no other broadcast of this process uses. */
export function takeSeq(): number {
  return nextSeq++;
}

export async function open(client: Client, port: number, path: string, count: number, sources: string[], stall = false) {
  const started = now();
  const result = await client.call<'opened'>(
    { type: 'open', count, port, path, sourceAddresses: sources, inFlight: IN_FLIGHT, stall, timeoutMs: OPEN_TIMEOUT_MS },
    OPEN_TIMEOUT_MS + 10_000,
  );
  return { ...result, ms: now() - started };
}

export { DELIVERY_TIMEOUT_MS };

const CLOCK_TICKS_PER_SECOND = 100;

export interface CpuTimes {
  /** User + system CPU time of every thread, ms. */
  total: number;
  user: number;
  system: number;
  /** The JavaScript thread's share (the rest: GC helpers, libuv's pool, the runtime's own threads). */
  mainThread: number;
}

/** CPU time process `pid` has used, from /proc (Linux only). */
export function cpuTimes(pid: number): CpuTimes {
  const [user, system] = ticksOf(`/proc/${pid}/stat`);
  const [mainUser, mainSystem] = ticksOf(`/proc/${pid}/task/${pid}/stat`);
  const ms = (ticks: number) => (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
  return { total: ms(user + system), user: ms(user), system: ms(system), mainThread: ms(mainUser + mainSystem) };
}

export function cpuSince(before: CpuTimes, after: CpuTimes): CpuTimes {
  return {
    total: after.total - before.total,
    user: after.user - before.user,
    system: after.system - before.system,
    mainThread: after.mainThread - before.mainThread,
  };
}

/** utime and stime (fields 14 and 15) of a /proc stat file, in clock ticks. */
function ticksOf(file: string): [number, number] {
  const stat = readFileSync(file, 'utf8');
  // The command name (field 2) may contain spaces; the fields after its closing parenthesis do not.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(fields[11]), Number(fields[12])];
}
