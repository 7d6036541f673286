import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    backend: 'src/backends/index.ts',
    client: 'src/client/index.ts',
    upstash: 'src/backends/upstash/index.ts',
    redis: 'src/backends/redis/index.ts',
    qstash: 'src/qstash/index.ts',
    bridge: 'src/bridge/index.ts',
    'bridge-cli': 'src/bridge/cli.ts',
    node: 'src/adapters/node.ts',
    cloudflare: 'src/cloudflare/index.ts',
    resumable: 'src/resumable/index.ts',
  },
  // Exists only inside workerd; the Worker's bundler (wrangler) resolves it.
  external: ['cloudflare:workers'],
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  // Shared chunks keep one copy of the error classes across subpaths, so `instanceof` holds.
  splitting: true,
  treeshake: true,
});
