/**
 * edge-sse as users run it: the built package in dist/ (`npm run bench` builds it first), typed by
 * its sources. Run from src/ through tsx, every closure would carry the `name` property esbuild's
 * keepNames adds, about 2 KiB per connection that no user pays.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

async function built<T>(entry: string): Promise<T> {
  const url = new URL(`../dist/${entry}.js`, import.meta.url);
  if (!existsSync(fileURLToPath(url))) throw new Error(`bench: dist/${entry}.js is missing: run npm run build (npm run bench does)`);
  return (await import(url.href)) as T;
}

export const core = await built<typeof import('../src/index.js')>('index');
export const node = await built<typeof import('../src/adapters/node.js')>('node');
export const redis = await built<typeof import('../src/backends/redis/index.js')>('redis');
export const upstash = await built<typeof import('../src/backends/upstash/index.js')>('upstash');
