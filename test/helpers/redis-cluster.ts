import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './redis-server.js';

const run = promisify(execFile);

/** One redis-server of a cluster of a test's own. */
interface ClusterNode {
  port: number;
  url: string;
  /** Its cluster node id. */
  id: string;
  /** A plain connection to this node alone (not following redirections); closed by `dispose`. */
  redis: Redis;
}

export interface OwnCluster {
  /** Every node's `redis://127.0.0.1:<port>`: seed nodes for a cluster client. */
  urls: string[];
  nodes: ClusterNode[];
  /** The node serving `slot` now. */
  masterOf(slot: number): Promise<ClusterNode>;
  /** A replica of the master serving `slot` (clusters started with replicas). */
  replicaOf(slot: number): Promise<ClusterNode>;
  /**
   * Moves `slot` to master `to` as `redis-cli --cluster reshard` does: IMPORTING/MIGRATING, MIGRATE
   * of its keys, then SETSLOT NODE everywhere. `midway` runs after the keys moved and before the
   * slot is handed over (commands on its keys are redirected with ASK meanwhile).
   */
  moveSlot(slot: number, to: ClusterNode, midway?: () => Promise<void>): Promise<void>;
  /** A manual failover (CLUSTER FAILOVER on a replica) of the master serving `slot`; resolves once every node agrees. */
  failOver(slot: number): Promise<{ from: ClusterNode; to: ClusterNode }>;
  /** The masters now. */
  masters(): Promise<ClusterNode[]>;
  /** Kills every node and removes its data. */
  dispose(): Promise<void>;
}

/**
 * A Redis Cluster of `masters` nodes (each with `replicas` replicas) on free ports, made with
 * `redis-cli --cluster create`; resolves once every node sees every slot served. Node timeouts are
 * short, so a failover takes about a second.
 */
export async function startOwnCluster({ masters = 3, replicas = 0 } = {}): Promise<OwnCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'edge-sse-cluster-'));
  const children: ChildProcess[] = [];
  const nodes: ClusterNode[] = [];
  const dispose = async () => {
    for (const node of nodes) node.redis.disconnect();
    await Promise.all(children.map(stop));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports = await distinctFreePorts(2 * masters * (1 + replicas));
    for (let index = 0; index < ports.length; index += 2) {
      const [port, busPort] = [ports[index]!, ports[index + 1]!];
      children.push(await startNode(port, busPort, dir));
    }
    const addresses = children.map((_, index) => `127.0.0.1:${ports[2 * index]}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'], {
      timeout: 30_000,
    });
    for (const address of addresses) {
      const port = Number(address.split(':')[1]);
      const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1 });
      redis.on('error', () => undefined);
      nodes.push({ port, url: `redis://${address}`, id: String(await redis.call('CLUSTER', 'MYID')), redis });
    }
    await untilStable(nodes, replicas);
  } catch (error) {
    await dispose();
    throw error;
  }

  async function owners(slot: number): Promise<{ master: ClusterNode; replicas: ClusterNode[] }> {
    const ranges = (await nodes[0]!.redis.call('CLUSTER', 'SLOTS')) as [number, number, ...[string, number, string][]][];
    const range = ranges.find(([from, to]) => from <= slot && slot <= to);
    if (!range) throw new Error(`slot ${slot} is served by no node`);
    const [, , master, ...others] = range;
    const byPort = (port: number) => nodes.find((node) => node.port === port)!;
    return { master: byPort(master![1]), replicas: others.map((other) => byPort(other[1])) };
  }

  return {
    urls: nodes.map((node) => node.url),
    nodes,
    masterOf: async (slot) => (await owners(slot)).master,
    async replicaOf(slot) {
      const [replica] = (await owners(slot)).replicas;
      if (!replica) throw new Error(`slot ${slot} has no replica`);
      return replica;
    },
    async moveSlot(slot, to, midway) {
      const { master: from } = await owners(slot);
      if (from === to) throw new Error(`slot ${slot} is on ${to.url} already`);
      await to.redis.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
      await from.redis.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
      for (;;) {
        const keys = (await from.redis.call('CLUSTER', 'GETKEYSINSLOT', slot, 100)) as string[];
        if (keys.length === 0) break;
        await from.redis.call('MIGRATE', '127.0.0.1', to.port, '', 0, 5000, 'KEYS', ...keys);
      }
      await midway?.();
      const others = (await currentMasters()).filter((node) => node !== from && node !== to);
      for (const node of [to, from, ...others]) await node.redis.call('CLUSTER', 'SETSLOT', slot, 'NODE', to.id);
      await untilStable(nodes, replicas);
    },
    async failOver(slot) {
      const {
        master: from,
        replicas: [to],
      } = await owners(slot);
      if (!to) throw new Error(`slot ${slot} has no replica`);
      await to.redis.call('CLUSTER', 'FAILOVER');
      const deadline = Date.now() + 20_000;
      while ((await owners(slot)).master !== to) {
        if (Date.now() > deadline) throw new Error(`${to.url} did not take over slot ${slot}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await untilStable(nodes, replicas);
      return { from, to };
    },
    masters: currentMasters,
    dispose,
  };

  async function currentMasters(): Promise<ClusterNode[]> {
    const ranges = (await nodes[0]!.redis.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
    const ports = new Set(ranges.map((range) => range[2][1]));
    return nodes.filter((node) => ports.has(node.port));
  }
}

/** Free ports, each below 55536 (Redis refuses higher ones with cluster mode on) and all distinct. */
async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) {
    const port = await freePort();
    if (port < 55536) ports.add(port);
  }
  return [...ports];
}

async function startNode(port: number, busPort: number, dir: string): Promise<ChildProcess> {
  const args = [
    '--port',
    String(port),
    '--cluster-port',
    String(busPort),
    '--bind',
    '127.0.0.1',
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    `nodes-${port}.conf`,
    '--cluster-node-timeout',
    '1000',
    '--dir',
    dir,
    '--dbfilename',
    `dump-${port}.rdb`,
    '--save',
    '',
    '--appendonly',
    'no',
    // A replica's first sync starts at once, not after the default 5 s wait for more replicas; and
    // CLUSTER SLOTS lists it once its offset moved, which a master's ping to it does (every 10 s by default).
    '--repl-diskless-sync-delay',
    '0',
    '--repl-ping-replica-period',
    '1',
  ];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${output}`)), 5000);
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk;
      if (/Ready to accept connections/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', () => reject(new Error(`redis-server exited: ${output}`)));
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/**
 * Until every node says the cluster is ok, knows every other node and agrees on who serves which
 * slots, each master with `replicas` replicas.
 */
async function untilStable(nodes: readonly ClusterNode[], replicas: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const infos = await Promise.all(nodes.map((node) => node.redis.call('CLUSTER', 'INFO').then(String, () => '')));
    const maps = await Promise.all(
      nodes.map((node) =>
        node.redis.call('CLUSTER', 'SLOTS').then(
          (reply) => slotMap(reply, replicas),
          () => '',
        ),
      ),
    );
    const ok = infos.every((info) => /cluster_state:ok/.test(info) && new RegExp(`cluster_known_nodes:${nodes.length}\\b`).test(info));
    if (ok && maps.every((map) => map !== '' && map === maps[0])) return;
    if (Date.now() > deadline) throw new Error(`the cluster did not settle: ${infos.join(' | ')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * CLUSTER SLOTS as `from-to:masterPort/replicaPorts` ranges, in order: equal on nodes that agree;
 * '' while a range has fewer than `replicas` replicas.
 */
function slotMap(reply: unknown, replicas: number): string {
  const ranges = reply as [number, number, ...[string, number][]][];
  if (ranges.some((range) => range.length - 3 < replicas)) return '';
  return ranges
    .map(([from, to, ...served]) => `${from}-${to}:${served.map((node) => node[1]).join('/')}`)
    .sort()
    .join(',');
}
