/**
 * Bundle size of what reaches the browser: edge-sse/client, minified and gzipped with esbuild
 * exactly as an app bundler would ship it, next to the client of @upstash/realtime (the issue's
 * reference for the Redis backends) bundled the same way.
 */
import { gzipSync } from 'node:zlib';
import { bundleForBrowser } from './bundle.js';
import { printTable } from './table.js';

interface Measured {
  name: string;
  minified: number;
  gzipped: number;
}

async function measure(name: string, contents: string, external: string[] = []): Promise<Measured> {
  const code = await bundleForBrowser(contents, external);
  return { name, minified: code.length, gzipped: gzipSync(code).length };
}

export async function run(): Promise<void> {
  const rows = [
    await measure('edge-sse/client: subscribe', `export { subscribe } from './src/client/index.ts';`),
    await measure('edge-sse/client: whole entry', `export * from './src/client/index.ts';`),
    await measure('edge-sse/client: decodeData only', `export { decodeData } from './src/client/index.ts';`),
    await measure('@upstash/realtime/client (react, zod external)', `export * from '@upstash/realtime/client';`, [
      'react',
      'react-dom',
      'zod',
    ]),
  ];
  const reference = rows[3]!;
  printTable(
    'Browser bundle size (esbuild, minified, ES2022)',
    ['bundle', 'minified', 'gzipped', 'gzipped ÷ realtime client'],
    rows.map((row) => [
      row.name,
      `${(row.minified / 1024).toFixed(2)} KiB`,
      `${(row.gzipped / 1024).toFixed(2)} KiB`,
      row === reference ? '—' : `×${(row.gzipped / reference.gzipped).toFixed(2)}`,
    ]),
  );
}
