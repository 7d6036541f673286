/**
 * The code blocks of the README and docs/*.md, as a user would paste them: each `ts`, `tsx`,
 * `js` or `mjs` block is one module, type-checked strictly against the package's own sources
 * (`edge-sse`, `edge-sse/upstash`, …). A block whose info string says `fragment` is shown on
 * purpose without its surroundings and is skipped; few should be.
 *
 * Imports belong in the block, where readers see them. What the reader's app brings (a `backend`,
 * `userFromCookie`) may be declared out of sight, in an HTML comment just before the fence:
 *
 *   <!-- snippet-prelude
 *   declare const backend: import('edge-sse').Backend;
 *   -->
 *
 * A block whose first line is a comment naming a file (`// server.ts`) is that file, so other
 * blocks of the same document can import it (`./server`).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

export interface Snippet {
  /** `README.md:120`: the file and the line of the opening fence. */
  where: string;
  /** The document, relative to the root: blocks import each other within one document only. */
  document: string;
  /** `server.ts` when the block's first line names it. */
  fileName: string | undefined;
  language: string;
  prelude: string;
  code: string;
}

const FILE_COMMENT = /^\/\/ ([\w./-]+\.(?:ts|tsx|js|mjs))\b/;
const PRELUDE = /<!-- snippet-prelude\n((?:(?!-->)[\s\S])*)-->\s*$/;

const CHECKED = new Set(['ts', 'tsx', 'js', 'mjs', 'typescript', 'javascript']);
const FENCE = /^```([^\s`]*)(.*)$/;

export function documents(root: string): string[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => join(root, 'docs', name));
  return [join(root, 'README.md'), ...docs];
}

export function snippetsOf(file: string, root: string): Snippet[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const snippets: Snippet[] = [];
  for (let index = 0; index < lines.length; index++) {
    const open = FENCE.exec(lines[index]!.trim());
    if (!open) continue;
    const start = index;
    const body: string[] = [];
    for (index++; index < lines.length && !lines[index]!.trim().startsWith('```'); index++) body.push(lines[index]!);
    const [, language = '', info = ''] = open;
    if (!CHECKED.has(language) || /\bfragment\b/.test(info)) continue;
    const indent = Math.min(...body.filter((line) => line.trim()).map((line) => line.length - line.trimStart().length));
    const code = body.map((line) => line.slice(Number.isFinite(indent) ? indent : 0)).join('\n');
    const before = lines.slice(Math.max(0, start - 40), start).join('\n');
    snippets.push({
      where: `${relative(root, file)}:${start + 1}`,
      document: relative(root, file),
      fileName: FILE_COMMENT.exec(code)?.[1],
      language,
      prelude: PRELUDE.exec(before)?.[1] ?? '',
      code,
    });
  }
  return snippets;
}
