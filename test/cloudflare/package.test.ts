/**
 * `cloudflare:workers` exists only inside workerd: edge-sse/cloudflare alone may import it, and the
 * build must leave it to the Worker's bundler. Every other entry point, the core above all, must
 * load without it (on Node, Vercel, Deno…). Checked on the built files, chunks included.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt } from '../examples/helpers.ts';

/** Every bare specifier a built file imports, following its relative imports (shared chunks). */
function importsOf(entry: string, seen = new Set<string>()): string[] {
  if (seen.has(entry)) return [];
  seen.add(entry);
  const code = readFileSync(entry, 'utf8');
  const specifiers = [...code.matchAll(/\bfrom\s*["']([^"']+)["']|\bimport\s*["']([^"']+)["']|\brequire\(\s*["']([^"']+)["']\s*\)/g)].map(
    (match) => (match[1] ?? match[2] ?? match[3])!,
  );
  return specifiers.flatMap((specifier) => (specifier.startsWith('.') ? importsOf(resolve(dirname(entry), specifier), seen) : [specifier]));
}

beforeAll(ensureBuilt, 120_000);

describe('cloudflare:workers stays in edge-sse/cloudflare', () => {
  it('dist/cloudflare.js and .cjs import it, unbundled', () => {
    for (const entry of ['cloudflare.js', 'cloudflare.cjs']) {
      expect(importsOf(join(ROOT, 'dist', entry))).toContain('cloudflare:workers');
    }
  });

  it('no other entry point loads it, through any chunk', () => {
    const entries = readdirSync(join(ROOT, 'dist')).filter((file) => /^[a-z-]+\.(js|cjs)$/.test(file) && !file.startsWith('cloudflare.'));
    expect(entries).toContain('index.js');
    for (const entry of entries) expect(importsOf(join(ROOT, 'dist', entry)), entry).not.toContain('cloudflare:workers');
  });
});
