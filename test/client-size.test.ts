/** edge-sse/client stays small and browser-only: a budget, measured the way a bundler would ship it. */
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bundleForBrowser as bundled } from '../bench/bundle.ts';

describe('edge-sse/client size', () => {
  it('the whole entry is under 5 KB minified (2.5 KB gzipped) and uses nothing Node-only', async () => {
    const code = await bundled(`export * from './src/client/index.ts';`);
    expect(code.length).toBeLessThan(5 * 1024);
    expect(gzipSync(code).length).toBeLessThan(2.5 * 1024);
    expect(code).not.toMatch(/\bnode:|\bprocess\.|\bBuffer\b|\brequire\(/);
  });

  it('tree-shakes: importing decodeData alone brings neither subscribe nor the error classes', async () => {
    const code = await bundled(`export { decodeData } from './src/client/index.ts';`);
    expect(code.length).toBeLessThan(300);
    expect(code).not.toMatch(/EventSource|EdgeSSEError/);
  });
});
