/** Bundles `contents` for the browser, minified, as an app bundler would ship it (bench/size.ts and the size budget test). */
import { build } from 'esbuild';

export async function bundleForBrowser(contents: string, external: string[] = []): Promise<string> {
  const result = await build({
    stdin: { contents, resolveDir: process.cwd(), loader: 'ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    external,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}
