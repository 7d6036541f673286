/**
 * The floor of the multi-process benchmarks (`scale`, `paths`): a `net` server that reads each
 * request up to its blank line, writes a status line and then, per event, the frame edge-sse
 * would write (`id:` with the same cursor form, `event:`, `data:`) straight to every socket.
 * No HTTP machinery and no chunked encoding: the cost of the sockets alone.
 */
import { type Socket, createServer } from 'node:net';

const HEAD = 'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n';

export interface SocketFloor {
  port: number;
  /** Writes one event, encoded once, to every open stream. */
  publish(type: string, payload: object): void;
  open(): number;
  close(): Promise<void>;
}

let lastId = 0;
/** A one-channel edge-sse id: the entry id and the `;json` marker. */
export const nextFloorId = () => `${Date.now()}-${lastId++};json`;

export function startSocketFloor(): Promise<SocketFloor> {
  const sockets = new Set<Socket>();
  const connections = new Set<Socket>();
  const encoder = new TextEncoder();
  const server = createServer((socket) => {
    connections.add(socket);
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.write(`${HEAD}retry: 1000\n: edge-sse\n\n`);
      sockets.add(socket);
    };
    socket.on('data', onData);
    socket.on('error', () => {});
    socket.once('close', () => {
      sockets.delete(socket);
      connections.delete(socket);
    });
  });
  return new Promise((resolve) => {
    server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
      resolve({
        port: (server.address() as { port: number }).port,
        publish(type, payload) {
          const frame = encoder.encode(`id: ${nextFloorId()}\nevent: ${type}\ndata: ${JSON.stringify(payload)}\n\n`);
          for (const socket of sockets) socket.write(frame);
        },
        open: () => sockets.size,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const socket of connections) socket.destroy();
          }),
      });
    });
  });
}
