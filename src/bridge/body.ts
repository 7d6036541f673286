import type { IncomingMessage } from 'node:http';
import { BridgeError } from './errors.js';

/**
 * Reads a request body up to `maxBytes`. Past the limit the rest is drained (so the client
 * can read the 413 instead of seeing a reset), up to a hard cap after which the socket is cut.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received <= maxBytes) chunks.push(chunk);
      else if (received > maxBytes * 8) req.destroy();
    });
    req.on('end', () => {
      if (received > maxBytes) reject(new BridgeError(413, `Request body is larger than ${maxBytes} bytes`));
      else resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
}

/** One command: a non-empty JSON array of strings (numbers and booleans are stringified). */
export function parseCommand(body: Buffer): string[] {
  return toCommand(parseJson(body), 'The body');
}

/** Several commands: a non-empty JSON array of commands. */
export function parseCommands(body: Buffer): string[][] {
  const value = parseJson(body);
  if (!Array.isArray(value) || value.length === 0) {
    throw new BridgeError(400, 'The body must be a non-empty JSON array of commands, e.g. [["SET","k","v"],["GET","k"]]');
  }
  return value.map((command, index) => toCommand(command, `Command ${index + 1}`));
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new BridgeError(400, `The body is not valid JSON: ${(error as Error).message}`);
  }
}

function toCommand(value: unknown, what: string): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new BridgeError(400, `${what} must be a non-empty JSON array like ["SET","key","value"]`);
  }
  return value.map((arg, index) => {
    if (typeof arg === 'string') return arg;
    if ((typeof arg === 'number' && Number.isFinite(arg)) || typeof arg === 'boolean') return String(arg);
    throw new BridgeError(400, `${what}: argument ${index + 1} must be a string, number or boolean, got ${describe(arg)}`);
  });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : typeof value;
}
