/**
 * processes — what many Node processes cost Redis: K = 1, 2, 4 server processes
 * (`processes-server.ts`, each on a port of its own), 10,000 idle SSE connections shared among
 * them over 4 channels (opened by the raw-socket client of the scale benchmark,
 * `scale-client.ts`), on one Redis and on a Redis Cluster of three masters, both of this
 * benchmark's own. Counted by Redis itself (`INFO`): the connections it holds and the commands it
 * processed while the connections opened and then per minute while idle. The cost grows with
 * processes × channels (× masters, on a cluster), never with connections.
 *
 * `BENCH_PROCESSES_WINDOW_S` (default 60): the idle window; `BENCH_PROCESSES_CONNECTIONS`
 * (default 10000); `BENCH_PROCESSES_K` (default `1,2,4`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis as IORedis } from 'ioredis';
import type { ClientReply, ClientRequest } from './scale-protocol.js';
import type { ProcessesServerConfig, ProcessesServerMessage } from './processes-server.js';
import { sleep } from './stats.js';
import { type Cell, formatNumber, printTable } from './table.js';
import { type OwnCluster, startOwnCluster } from '../test/helpers/redis-cluster.js';
import { type OwnRedis, startOwnRedis } from '../test/helpers/redis-server.js';

const WINDOW_MS = Number(process.env.BENCH_PROCESSES_WINDOW_S ?? 60) * 1000;
const CONNECTIONS = Number(process.env.BENCH_PROCESSES_CONNECTIONS ?? 10_000);
const KS = (process.env.BENCH_PROCESSES_K ?? '1,2,4').split(',').map(Number);
const CHANNELS = ['news', 'orders', 'chat', 'alerts'];
const SOURCES = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
const OPEN_TIMEOUT_MS = 120_000;
const FILE_LIMIT = 20_000;

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** `node --import tsx <script>` with the soft file limit raised, over IPC. */
function spawnNode(script: string, args: string[]): ChildProcess {
  const command = `ulimit -n ${FILE_LIMIT} 2>/dev/null || ulimit -n $(ulimit -Hn); exec "$0" --import tsx "$@"`;
  return spawn('bash', ['-c', command, process.execPath, here(script), ...args], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  });
}

/** Sends `{ ...command, id }` and resolves to the reply with that id. */
function caller(child: ChildProcess) {
  let next = 1;
  const waiting = new Map<number, (reply: unknown) => void>();
  child.on('message', (message: { id?: number }) => {
    if (message.id === undefined) return;
    waiting.get(message.id)?.(message);
    waiting.delete(message.id);
  });
  return <Reply>(command: object, timeoutMs = 30_000): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => reject(new Error(`no reply to ${JSON.stringify(command)} within ${timeoutMs} ms`)), timeoutMs);
      waiting.set(id, (reply) => {
        clearTimeout(timer);
        resolve(reply as Reply);
      });
      child.send({ ...command, id });
    });
}

interface Server {
  port: number;
  call: ReturnType<typeof caller>;
  child: ChildProcess;
}

async function startServer(config: ProcessesServerConfig): Promise<Server> {
  const child = spawnNode('processes-server.ts', [JSON.stringify(config)]);
  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (message: ProcessesServerMessage) => message.type === 'listening' && resolve(message.port));
    child.once('exit', (code) => reject(new Error(`server exited (${code})`)));
  });
  return { port, call: caller(child), child };
}

async function stop(child: ChildProcess, close: () => Promise<unknown>): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await close().catch(() => child.kill('SIGKILL'));
  await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))]);
}

/** What a set of Redis servers reports: connections held, commands processed and by name. */
class RedisCounter {
  private monitors: IORedis[];

  constructor(urls: string[]) {
    this.monitors = urls.map((url) => new IORedis(url, { maxRetriesPerRequest: 1 }));
  }

  /** Connections (less the monitors' own) and calls per command name, summed over the servers. */
  async read(): Promise<{ connections: number; byName: Map<string, number> }> {
    let connections = 0;
    const byName = new Map<string, number>();
    for (const monitor of this.monitors) {
      const info = String(await monitor.call('INFO', 'all'));
      connections += Number(/connected_clients:(\d+)/.exec(info)![1]) - 1;
      for (const [, name, calls] of info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g))
        byName.set(name!, (byName.get(name!) ?? 0) + Number(calls));
    }
    return { connections, byName };
  }

  close(): void {
    for (const monitor of this.monitors) monitor.disconnect();
  }
}

/** The commands processed between two reads, by name, busiest first; the monitors' INFO left out. */
function commandsBetween(before: Map<string, number>, after: Map<string, number>): [string, number][] {
  const deltas = [...after]
    .map(([name, calls]) => [name, calls - (before.get(name) ?? 0)] as [string, number])
    .filter(([name, delta]) => delta > 0 && name !== 'info');
  return deltas.sort((a, b) => b[1] - a[1]);
}

const total = (commands: [string, number][]) => commands.reduce((sum, [, calls]) => sum + calls, 0);

async function measure(label: string, k: number, target: { url?: string; cluster?: string[]; counted: string[] }): Promise<Cell[]> {
  const prefix = `bench-processes:${k}:`;
  const counter = new RedisCounter(target.counted);
  const client = spawnNode('scale-client.ts', []);
  const callClient = caller(client);
  const servers: Server[] = [];
  try {
    const idle = await counter.read();
    for (let index = 0; index < k; index++) servers.push(await startServer({ url: target.url, cluster: target.cluster, prefix }));
    const beforeOpen = await counter.read();
    let opened = 0;
    const share = Math.floor(CONNECTIONS / (k * CHANNELS.length));
    for (const server of servers) {
      for (const channel of CHANNELS) {
        const reply = await callClient<Extract<ClientReply, { type: 'opened' }>>(
          {
            type: 'open',
            count: share,
            port: server.port,
            path: `/?channel=${channel}`,
            sourceAddresses: SOURCES,
            inFlight: 256,
            timeoutMs: OPEN_TIMEOUT_MS,
          } satisfies ClientRequest,
          OPEN_TIMEOUT_MS + 10_000,
        );
        opened += reply.opened;
      }
    }
    await sleep(2000); // the last streams' reads settle
    const afterOpen = await counter.read();
    await sleep(WINDOW_MS);
    const afterIdle = await counter.read();
    const held = (await Promise.all(servers.map((server) => server.call<{ open: number }>({ type: 'stats' })))).reduce(
      (sum, stats) => sum + stats.open,
      0,
    );
    const idleCommands = commandsBetween(afterOpen.byName, afterIdle.byName);
    const perMinute = (calls: number) => formatNumber((calls / WINDOW_MS) * 60_000, 1);
    return [
      label,
      k,
      `${formatNumber(held)}/${formatNumber(opened)}`,
      afterIdle.connections - idle.connections,
      formatNumber(total(commandsBetween(beforeOpen.byName, afterOpen.byName))),
      perMinute(total(idleCommands)),
      idleCommands.map(([name, calls]) => `${name} ${perMinute(calls)}`).join(', ') || '—',
    ];
  } finally {
    await Promise.all(servers.map((server) => stop(server.child, () => server.call({ type: 'close' }))));
    await stop(client, () => callClient({ type: 'close' } satisfies ClientRequest));
    counter.close();
  }
}

export async function run(): Promise<void> {
  let own: OwnRedis | undefined;
  let cluster: OwnCluster | undefined;
  try {
    [own, cluster] = await Promise.all([startOwnRedis(), startOwnCluster({ masters: 3 })]);
    const rows: Cell[][] = [];
    for (const k of KS) rows.push(await measure('one Redis', k, { url: own.url, counted: [own.url] }));
    for (const k of KS) rows.push(await measure('cluster, 3 masters', k, { cluster: cluster.urls, counted: cluster.urls }));
    printTable(
      `${formatNumber(CONNECTIONS)} idle connections over ${CHANNELS.length} channels, shared by K processes; Redis's own count (INFO), idle window ${WINDOW_MS / 1000} s`,
      ['Redis', 'K', 'held/opened', 'connections', 'commands to open all', 'commands/min idle', 'idle, by command (/min)'],
      rows,
    );
  } finally {
    await Promise.all([own?.dispose(), cluster?.dispose()]);
  }
}
