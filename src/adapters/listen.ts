/** Listening with node:http, for edge-sse/node's `serve` and the bridge. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Listening {
  /** The port bound (the one asked for, or a free one for 0). */
  port: number;
  /** `http://host:port`, the host in brackets if it is IPv6. */
  url: string;
}

/** Resolves once `server` listens on `host:port`; rejects if it cannot (EADDRINUSE, EACCES). */
export function listen(server: Server, port: number, host: string): Promise<Listening> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const bound = (server.address() as AddressInfo).port;
      resolve({ port: bound, url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}` });
    });
  });
}
