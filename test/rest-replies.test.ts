/**
 * What an HTTP endpoint answers is not trusted: a 200 with HTML (a captive portal, a proxy page),
 * JSON of the wrong shape, or a body without end must fail as a BackendError that says what came
 * back — never a raw SyntaxError or TypeError, never unbounded buffering.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upstashBackend } from '../src/backends/upstash/index.js';
import { BackendError, createSSE } from '../src/index.js';
import { useBridge } from './helpers/bridge.js';
import { SSEReader, streamRequest } from './helpers/sse.js';
import { waitUntil } from './helpers/wait.js';

/** The real Redis behind a bridge answers what a test does not make hostile. */
const shared = useBridge('rest-replies');

type Answer = (req: IncomingMessage, res: ServerResponse) => void;

const PORTAL = `<!DOCTYPE html><html><head><title>Sign in to the hotel Wi-Fi</title></head><body>${'<p>Terms of use</p>'.repeat(50)}</body></html>`;

let server: Server;
let base: string;
/** The answer for the next requests, by path prefix. */
let answers: Record<string, Answer> = {};
let openResponses = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    openResponses++;
    res.once('close', () => openResponses--);
    const path = Object.keys(answers).find((prefix) => req.url!.startsWith(prefix));
    if (path) answers[path]!(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const json =
  (body: string): Answer =>
  (_, res) =>
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(body);

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

/** Passes `body` on to the bridge and its answer back, as a well-behaved endpoint. */
async function forward(req: IncomingMessage, res: ServerResponse, body: string): Promise<void> {
  const answer = await fetch(shared.bridge.url + req.url, {
    method: 'POST',
    headers: { Authorization: `Bearer ${shared.token}`, 'Content-Type': 'application/json' },
    body,
  });
  res.writeHead(answer.status, { 'Content-Type': answer.headers.get('content-type') ?? 'application/json' }).end(await answer.text());
}

const forwarded: Answer = async (req, res) => forward(req, res, await bodyOf(req));

/** Writes 64 KiB chunks for as long as the client keeps reading. */
const endless =
  (headers: Record<string, string>, chunk: string): Answer =>
  (_, res) => {
    res.writeHead(200, headers);
    const block = chunk.repeat(Math.ceil(65_536 / chunk.length));
    const pump = () => {
      while (!res.destroyed && res.write(block));
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  };

async function refusal(promise: Promise<unknown>): Promise<BackendError> {
  const error = await promise.then(
    () => new Error('expected a rejection'),
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(BackendError);
  return error as BackendError;
}

const backend = (options: Parameters<typeof upstashBackend>[0] = {}) => upstashBackend({ url: base, token: 't', ...options });
/** Through this test's endpoint, whose `forwarded` answers come from the bridge. */
const viaBridge = (options: Parameters<typeof upstashBackend>[0] = {}) =>
  upstashBackend({ url: base, token: shared.token, prefix: shared.prefix(), ...options });

describe('a 200 that is not Redis replies', () => {
  it('HTML from a captive portal: a BackendError with the status, the content type and the first bytes', async () => {
    answers = { '/pipeline': (_, res) => res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PORTAL) };
    const error = await refusal(createSSE({ backend: backend() }).sendEvent('n', 1));
    expect(error.code).toBe('BACKEND_ERROR');
    expect(error.message).toContain(
      `${base}/pipeline answered 200 with text/html; charset=utf-8: "<!DOCTYPE html><html><head><title>Sign in`,
    );
    expect(error.message).toMatch(/…", which is not JSON: is the URL an Upstash REST endpoint \(UPSTASH_REDIS_REST_URL\)\?$/);
  });

  it.each([
    ['an object', '{"result":"OK"}', /answered an object instead of 1 replies/],
    ['null', 'null', /answered null instead of 1 replies/],
    ['a number', '42', /answered number instead of 1 replies/],
    ['too few replies', '[]', /answered 0 items instead of 1 replies/],
    ['an item that is not an object', '[null]', /answered an item that is not an object instead of 1 replies/],
    ['a result of the wrong type', '[{"result":{"id":"1-0"}}]', /a result that is not a Redis value/],
    ['a nested result of the wrong type', '[{"result":[["1-0",["type",true]]]}]', /a result that is not a Redis value/],
  ])('JSON of the wrong shape (%s): a BackendError naming what came', async (_, body, message) => {
    answers = { '/pipeline': json(body) };
    const error = await refusal(backend().tail(['x'], 1));
    expect(error.code).toBe('BACKEND_ERROR');
    expect(error.message).toMatch(message);
  });

  it("an error item is the command's error, and the reply of a well-formed answer is used", async () => {
    answers = { '/pipeline': json('[{"error":"WRONGTYPE Operation against a key holding the wrong kind of value"}]') };
    await expect(backend().tail(['x'], 1)).rejects.toThrow(/WRONGTYPE/);
    answers = { '/pipeline': json('[{"result":[["7-0",["type","n","data","seven"]]]}]') };
    expect(await backend().tail(['x'], 1)).toEqual([{ head: '7-0', events: [{ id: '7-0', type: 'n', data: 'seven', json: false }] }]);
  });

  it.each(['poll', 'subscribe'] as const)('a stream (%s) ends with a retry hint and onError gets the BackendError', async (mode) => {
    const portal: Answer = (_, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end(PORTAL);
    // In subscribe mode the commands reach Redis and only the subscription meets the portal.
    answers = mode === 'poll' ? { '/pipeline': portal } : { '/pipeline': forwarded, '/subscribe': portal };
    const errors: unknown[] = [];
    const sse = createSSE({ backend: viaBridge({ mode }), backendRetryMs: 1000, onError: (error) => errors.push(error) });
    const reader = new SSEReader(await sse.handler(streamRequest('?channel=portal')));
    await reader.waitForEnd();
    expect(reader.retries.at(-1)).toBeGreaterThanOrEqual(1000);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(BackendError);
    const expected =
      mode === 'poll'
        ? /\/pipeline answered 200 with text\/html: "<!DOCTYPE html>.*not JSON/
        : /\/subscribe answered 200 with text\/html: "<!DOCTYPE html>.*not an event stream/;
    expect((errors[0] as Error).message).toMatch(expected);
  });
});

describe('Redis values of the wrong shape for their command', () => {
  it.each([
    ['not a list', '[{"result":"oops"}]'],
    ['an entry that is not a list', '[{"result":["7-0"]}]'],
    ['an entry whose id is not text', '[{"result":[[7,["type","n"]]]}]'],
    ['an entry without a list of fields', '[{"result":[["7-0","type"]]}]'],
  ])('XREVRANGE answered with %s: a BackendError naming the command', async (_, body) => {
    answers = { '/pipeline': json(body) };
    const error = await refusal(backend().tail(['x'], 1));
    expect(error.code).toBe('BACKEND_ERROR');
    expect(error.message).toBe('Redis answered XREVRANGE with something other than stream entries');
  });

  it('XINFO STREAM answered with text: a BackendError naming the command', async () => {
    answers = { '/pipeline': json('[{"result":[]},{"result":"oops"}]') };
    const error = await refusal(backend().read([{ channel: 'x', after: '0-0' }], 10));
    expect(error.message).toBe('Redis answered XINFO STREAM with something other than a list of fields');
  });

  it('XREAD answered with a stream that is not [key, entries]: the poll feed reports a BackendError', async () => {
    /** The commands reach Redis, except the poll's XREAD, which gets a number for a stream. */
    const malformedXread: Answer = async (req, res) => {
      const body = await bodyOf(req);
      const [[name]] = JSON.parse(body) as [string[]];
      if (name === 'XREAD') json('[{"result":[42]}]')(req, res);
      else await forward(req, res, body);
    };
    answers = { '/pipeline': malformedXread };
    const errors: unknown[] = [];
    const sse = createSSE({ backend: viaBridge({ mode: 'poll' }), backendRetryMs: 1000, onError: (error) => errors.push(error) });
    const reader = new SSEReader(await sse.handler(streamRequest('?channel=shapes')));
    await reader.waitForEnd();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(BackendError);
    expect((errors[0] as Error).message).toBe('Redis answered XREAD with something other than streams of entries');
  });
});

describe('bodies without end', () => {
  it('stops reading a pipeline answer at maxResponseBytes and drops the connection', async () => {
    answers = { '/pipeline': endless({ 'Content-Type': 'application/json' }, '[{"result":"') };
    const error = await refusal(backend({ maxResponseBytes: 1024 * 1024 }).tail(['x'], 1));
    expect(error.message).toBe(
      `${base}/pipeline answered more than 1048576 bytes (option maxResponseBytes); no Redis reply edge-sse asks for is that large`,
    );
    await waitUntil(() => openResponses === 0);
  });

  it('refuses a declared Content-Length over maxResponseBytes without reading it', async () => {
    let written = 0;
    answers = {
      '/pipeline': (_, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(64 * 1024 * 1024) });
        const block = 'x'.repeat(65_536);
        const pump = () => {
          while (!res.destroyed && written < 64 * 1024 * 1024 && res.write(block)) written += block.length;
          if (!res.destroyed && written < 64 * 1024 * 1024) res.once('drain', pump);
        };
        pump();
      },
    };
    const error = await refusal(backend({ maxResponseBytes: 1024 * 1024 }).tail(['x'], 1));
    expect(error.message).toMatch(/answered more than 1048576 bytes/);
    await waitUntil(() => openResponses === 0);
    expect(written).toBeLessThan(32 * 1024 * 1024);
  });

  it('fails a subscription whose line never ends, instead of buffering it', async () => {
    answers = {
      '/pipeline': forwarded,
      '/subscribe': endless({ 'Content-Type': 'text/event-stream' }, 'data: message,sse:endless,'),
    };
    const errors: unknown[] = [];
    const sse = createSSE({ backend: viaBridge(), backendRetryMs: 1000, onError: (error) => errors.push(error) });
    const reader = new SSEReader(await sse.handler(streamRequest('?channel=endless')));
    await reader.waitForEnd();
    expect(errors[0]).toBeInstanceOf(BackendError);
    expect((errors[0] as Error).message).toBe(`${base}/subscribe sent a line over 1048576 bytes: not a pub/sub message`);
    await waitUntil(() => openResponses === 0);
  });
});
