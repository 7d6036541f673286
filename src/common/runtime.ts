/** Cloudflare Workers forbids using one request's I/O (streams, fetches) from another request. */
export function isCloudflareWorkers(): boolean {
  return typeof navigator !== 'undefined' && navigator.userAgent === 'Cloudflare-Workers';
}

/** Bun.serve cuts a connection after 10 s without traffic (its default `idleTimeout`). */
function isBun(): boolean {
  return typeof navigator !== 'undefined' && typeof navigator.userAgent === 'string' && navigator.userAgent.startsWith('Bun/');
}

/**
 * Heartbeats beat idle timeouts on the way to the client: 15 s is below every proxy's and load
 * balancer's default (30 s and up), and under Bun 8 s, below its server's own 10 s. (One default
 * of 8 s everywhere would double every other platform's idle writes for nothing.)
 */
export function defaultKeepAliveMs(): number {
  return isBun() ? 8_000 : 15_000;
}
