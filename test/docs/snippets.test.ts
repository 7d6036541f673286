/** Every code block in README.md and docs/*.md compiles (see snippets.ts for what is checked). */
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { documents, snippetsOf } from './snippets.js';

const ROOT = join(import.meta.dirname, '..', '..');

const SUBPATHS: Record<string, string> = {
  'edge-sse': 'src/index.ts',
  'edge-sse/backend': 'src/backends/index.ts',
  'edge-sse/client': 'src/client/index.ts',
  'edge-sse/upstash': 'src/backends/upstash/index.ts',
  'edge-sse/redis': 'src/backends/redis/index.ts',
  'edge-sse/qstash': 'src/qstash/index.ts',
  'edge-sse/bridge': 'src/bridge/index.ts',
  'edge-sse/node': 'src/adapters/node.ts',
  'edge-sse/cloudflare': 'src/cloudflare/index.ts',
  'edge-sse/resumable': 'src/resumable/index.ts',
};

const OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
  types: ['node'],
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  allowJs: true,
  checkJs: true,
  jsx: ts.JsxEmit.ReactJSX,
  allowImportingTsExtensions: true,
  baseUrl: ROOT,
  // Deno's `npm:` specifiers name the same entry points.
  paths: Object.fromEntries(
    Object.entries(SUBPATHS).flatMap(([name, path]) => [
      [name, [path]],
      [`npm:${name}`, [path]],
    ]),
  ),
};

const EXTENSION: Record<string, string> = { ts: 'ts', typescript: 'ts', tsx: 'tsx', js: 'mjs', javascript: 'mjs', mjs: 'mjs' };

/**
 * Type-checks the snippets together, each as its own module; diagnostics per snippet. JavaScript
 * blocks are checked for what exists and how it is called, without asking for type annotations.
 */
function check(snippets: ReturnType<typeof snippetsOf>, options: ts.CompilerOptions): Map<string, string[]> {
  const files = new Map<string, string>();
  const names: string[] = [];
  snippets.forEach((snippet, index) => {
    const name = snippet.fileName ?? `${index}.${EXTENSION[snippet.language]}`;
    const path = join(ROOT, '.snippets', snippet.document.replace(/[/.]/g, '_'), name);
    names.push(path);
    // `export {}` makes a block without imports a module too, so blocks never share globals. The
    // prelude goes on the same line as the code's first, so line numbers stay the block's own.
    files.set(path, `${snippet.prelude.replace(/\n/g, ' ')}${snippet.code}\nexport {};\n`);
  });
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  host.readFile = (name) => files.get(name) ?? readFile(name);
  host.fileExists = (name) => files.has(name) || ts.sys.fileExists(name);
  host.directoryExists = (name) => [...files.keys()].some((file) => file.startsWith(`${name}/`)) || ts.sys.directoryExists(name);
  host.getSourceFile = (name, version, onError) => {
    const text = files.get(name);
    return text === undefined ? getSourceFile(name, version, onError) : ts.createSourceFile(name, text, version, true);
  };
  const program = ts.createProgram([...files.keys()], options, host);
  const byFile = new Map<string, string[]>();
  names.forEach((name, index) => {
    const diagnostics = [
      ...program.getSyntacticDiagnostics(program.getSourceFile(name)),
      ...program.getSemanticDiagnostics(program.getSourceFile(name)),
    ];
    const messages = diagnostics.map((diagnostic) => {
      const line =
        diagnostic.file && diagnostic.start !== undefined ? diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start).line + 1 : 0;
      return `line ${line}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
    });
    if (messages.length > 0) byFile.set(snippets[index]!.where, messages);
  });
  return byFile;
}

describe('code blocks in the docs', () => {
  const snippets = documents(ROOT).flatMap((file) => snippetsOf(file, ROOT));

  it('are found (the extractor works)', () => {
    expect(snippets.length).toBeGreaterThan(15);
    expect(snippets.some((snippet) => snippet.where.startsWith('README.md'))).toBe(true);
  });

  it('all type-check as written', () => {
    const isJs = (snippet: (typeof snippets)[number]) => EXTENSION[snippet.language] === 'mjs';
    const failures = new Map([
      ...check(
        snippets.filter((snippet) => !isJs(snippet)),
        OPTIONS,
      ),
      ...check(snippets.filter(isJs), { ...OPTIONS, noImplicitAny: false }),
    ]);
    expect(Object.fromEntries(failures)).toEqual({});
  }, 60_000);
});
