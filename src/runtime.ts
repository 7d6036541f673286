/** Cloudflare Workers forbids using one request's I/O (streams, fetches) from another request. */
export function isCloudflareWorkers(): boolean {
  return typeof navigator !== 'undefined' && navigator.userAgent === 'Cloudflare-Workers';
}
