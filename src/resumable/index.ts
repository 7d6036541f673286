/**
 * edge-sse/resumable — resumable response streams (an LLM's answer that a client picks up again
 * after a reload, or that a second tab follows), with the interface of Vercel's
 * `resumable-stream`, on any edge-sse backend: Upstash over HTTP (edge runtimes, Cloudflare
 * Workers), Redis over TCP, or memory.
 *
 * The stream's text is stored as it is produced, in batches, in the stream's own channel (see
 * names.ts and events.ts): a follower reads it from there — from the start, a character count or
 * a cursor — and then live, through the same shared readers as the stream handler. So a stream
 * can be resumed on any instance, also after its producer's process died (the stream is then
 * marked failed after `producerTimeoutMs`, and followers end).
 */
import { type Backend, READ_BATCH, type Retention } from '../backends/contract.js';
import { ValidationError, invalidOption } from '../common/errors.js';
import { Hub, sharedHub } from '../server/hub.js';
import { ZERO_ID, isStreamId } from '../wire/ids.js';
import { describe } from '../wire/names.js';
import { wholeNumber } from '../common/options.js';
import { startEvent } from './events.js';
import { type Chunk, type FollowerSettings, type ResumePoint, follow } from './follower.js';
import { DEFAULT_KEY_PREFIX, type StreamChannels, assertKeyPrefix, channelsOf } from './names.js';
import { produce } from './producer.js';
import { StreamWriter, type WriterSettings } from './writer.js';

export { ResumableStreamError } from './errors.js';
export type { Chunk } from './follower.js';

export interface ResumableStreamContextOptions {
  /** Where streams are kept: any edge-sse backend. */
  backend: Backend;
  /**
   * Keeps the process alive until a promise settles (`after` from next/server, `ctx.waitUntil`
   * on Workers); the producer passes it the work of storing its stream to the end. `null` on a
   * server that does not suspend.
   */
  waitUntil: ((promise: Promise<unknown>) => void) | null;
  /** Names the streams' channels, `<keyPrefix>/<id>` (default `resumable-stream`). */
  keyPrefix?: string;
  /** Seconds a stream is kept after its last write (default 86400, as resumable-stream's sentinel). */
  ttlSeconds?: number;
  /**
   * Serve a finished stream, whole, to whoever resumes it, for its ttlSeconds (default false: a
   * finished stream resumes as `null`, as with resumable-stream).
   */
  replayFinished?: boolean;
  /** Longest a chunk waits to be stored while someone follows (default 25 ms). */
  flushMs?: number;
  /** …and while nobody follows (default 250 ms). */
  idleFlushMs?: number;
  /** A batch is stored once it holds this many characters (default 16384). */
  maxBatchChars?: number;
  /**
   * A stream whose producer stores nothing for this long — no text, no heartbeat (sent every
   * third of it while the source is silent) — is marked failed by its followers (default 30000).
   */
  producerTimeoutMs?: number;
  /** A reader that leaves this many characters unread is cut off, and may resume (default 4 Mi). */
  maxQueuedChars?: number;
  /** Bound on each request to the store (default 10000 ms). */
  callTimeoutMs?: number;
  /** Told when a producer could not store its stream (its followers will see the stream fail). */
  onError?: (error: unknown, streamId: string) => void;
}

/** Where to resume: a number of characters to skip (as resumable-stream), or a cursor and/or a count. */
export type ResumeFrom = number | { skipCharacters?: number; cursor?: string };

export interface ResumableStreamContext {
  /**
   * Creates the stream, or resumes it when it exists (idempotent: `makeStream` runs only for the
   * caller that creates it). `skipCharacters` applies when resuming. `null` once the stream is done.
   */
  resumableStream(
    streamId: string,
    makeStream: () => ReadableStream<string>,
    skipCharacters?: ResumeFrom,
  ): Promise<ReadableStream<string> | null>;
  /** Creates the stream; if it already exists, resumes it instead (`null` once it is done). */
  createNewResumableStream(
    streamId: string,
    makeStream: () => ReadableStream<string>,
    skipCharacters?: ResumeFrom,
  ): Promise<ReadableStream<string> | null>;
  /** Resumes a stream: `undefined` when there is none, `null` once it is done (unless replayFinished). */
  resumeExistingStream(streamId: string, skipCharacters?: ResumeFrom): Promise<ReadableStream<string> | null | undefined>;
  /** `null` when there is no such stream, `true` while it runs, `"DONE"` once it ended. */
  hasExistingStream(streamId: string): Promise<null | true | 'DONE'>;
  /** As resumeExistingStream, with each chunk's cursor, to resume from exactly there later. */
  resumeExistingStreamWithCursors(streamId: string, from?: ResumeFrom): Promise<ReadableStream<Chunk> | null | undefined>;
}

/** Text events a stream may hold: MAXLEN must never trim a stream that is being resumed. */
const MAX_EVENTS = 1_000_000;
/** Text a producer holds while the store does not take it (it retries): past this it gives up. */
const MAX_PENDING_CHARS = 8 * 1024 * 1024;

export function createResumableStreamContext(options: ResumableStreamContextOptions): ResumableStreamContext {
  const settings = resolveOptions(options);
  const create = (id: string, makeStream: () => ReadableStream<string>) => createStream(settings, id, makeStream);
  const resume = (id: string, from?: ResumeFrom) => follow(settings.follower, settings.channels(id), resumePoint(from));
  const createOrResume = async (id: string, makeStream: () => ReadableStream<string>, from?: ResumeFrom) => {
    const channels = settings.channels(id);
    const point = resumePoint(from);
    if (typeof makeStream !== 'function') throw invalidOption('makeStream must be a function that returns a ReadableStream<string>');
    return (await create(channels.id, makeStream)) ?? (await follow(settings.follower, channels, point).then(asText)) ?? null;
  };
  return {
    resumableStream: createOrResume,
    createNewResumableStream: createOrResume,
    resumeExistingStream: async (id, from) => asText(await resume(id, from)),
    resumeExistingStreamWithCursors: resume,
    async hasExistingStream(id) {
      const { stream, end } = settings.channels(id);
      const [running, ended] = await settings.backend.tail([stream, end], 0, { signal: AbortSignal.timeout(settings.callTimeoutMs) });
      if (running!.head === ZERO_ID) return null;
      return ended!.head === ZERO_ID ? true : 'DONE';
    },
  };
}

type Settings = ReturnType<typeof resolveOptions>;

function resolveOptions(options: ResumableStreamContextOptions) {
  if (!options || typeof options.backend?.append !== 'function') {
    throw invalidOption('createResumableStreamContext needs a backend, e.g. { backend: upstashBackend(), waitUntil: after }');
  }
  if (options.waitUntil !== null && typeof options.waitUntil !== 'function') {
    throw invalidOption('Option waitUntil must be a function (after from next/server, ctx.waitUntil on Workers) or null');
  }
  const { backend } = options;
  const prefix = assertKeyPrefix(options.keyPrefix ?? DEFAULT_KEY_PREFIX);
  const retention: Retention = { maxLength: MAX_EVENTS, ttlSeconds: wholeNumber('ttlSeconds', options.ttlSeconds, 86_400, 1) };
  const timeoutMs = wholeNumber('producerTimeoutMs', options.producerTimeoutMs, 30_000, 300);
  const callTimeoutMs = wholeNumber('callTimeoutMs', options.callTimeoutMs, 10_000, 100);
  const maxQueuedChars = wholeNumber('maxQueuedChars', options.maxQueuedChars, 4 * 1024 * 1024, 1024);
  const writer: WriterSettings = {
    backend,
    retention,
    flushMs: wholeNumber('flushMs', options.flushMs, 25, 0, 60_000),
    idleFlushMs: wholeNumber('idleFlushMs', options.idleFlushMs, 250, 0, 60_000),
    maxBatchChars: wholeNumber('maxBatchChars', options.maxBatchChars, 16_384, 16, 60_000),
    timeoutMs,
    maxPendingChars: MAX_PENDING_CHARS,
    callTimeoutMs,
    onError: options.onError,
  };
  const follower: FollowerSettings = {
    backend,
    hub: () => (backend.shareable ? { hub: sharedHub(backend), own: false } : { hub: new Hub(backend), own: true }),
    retention,
    replayFinished: options.replayFinished ?? false,
    timeoutMs,
    callTimeoutMs,
    maxQueuedChars,
    readBatch: READ_BATCH,
  };
  return {
    backend,
    waitUntil: options.waitUntil,
    retention,
    timeoutMs,
    callTimeoutMs,
    maxQueuedChars,
    writer,
    follower,
    channels: (id: string): StreamChannels => channelsOf(prefix, id),
  };
}

/**
 * Claims the id with a start event, stored once per id (an idempotency key, and a check that the
 * channel held nothing before): the caller that stored it produces; undefined for every other.
 */
async function createStream(
  settings: Settings,
  id: string,
  makeStream: () => ReadableStream<string>,
): Promise<ReadableStream<string> | undefined> {
  const channels = settings.channels(id);
  let repeated = false;
  let previous: string | undefined;
  const [startId] = await settings.backend.append([startEvent(channels.stream, settings.timeoutMs)], settings.retention, {
    signal: AbortSignal.timeout(settings.callTimeoutMs),
    idempotency: {
      key: `edge-sse/resumable:start:${channels.stream}`,
      ttlSeconds: settings.retention.ttlSeconds,
      onRepeat: () => (repeated = true),
    },
    onPrevious: (heads) => (previous = heads.get(channels.stream)),
  });
  // A channel that held events already (its key expired before it): this start is one stray event in it.
  if (repeated || (previous !== undefined && previous !== ZERO_ID)) return undefined;
  const writer = new StreamWriter(settings.writer, channels, startId as string, previous === undefined);
  return produce(makeStream, writer, settings.maxQueuedChars, settings.waitUntil);
}

function resumePoint(from: ResumeFrom | undefined): ResumePoint {
  if (from === undefined || from === null) return { skipCharacters: 0, cursor: undefined };
  const { skipCharacters, cursor } = typeof from === 'number' ? { skipCharacters: from, cursor: undefined } : from;
  if (skipCharacters !== undefined && (!Number.isSafeInteger(skipCharacters) || skipCharacters < 0)) {
    throw invalidOption(`skipCharacters must be a whole number of characters, 0 or more, got ${String(skipCharacters)}`);
  }
  if (cursor !== undefined && (typeof cursor !== 'string' || !isStreamId(cursor))) {
    throw new ValidationError(
      'INVALID_CURSOR',
      `Invalid resumable stream cursor ${describe(cursor)}: pass a chunk's cursor, like 1732780000000-0`,
    );
  }
  return { skipCharacters: skipCharacters ?? 0, cursor };
}

/** The chunks' text alone, as resumable-stream's streams carry it. */
function asText<T extends ReadableStream<Chunk> | null | undefined>(stream: T): ReadableStream<string> | Exclude<T, ReadableStream<Chunk>> {
  if (!stream) return stream as Exclude<T, ReadableStream<Chunk>>;
  return stream.pipeThrough(new TransformStream<Chunk, string>({ transform: (chunk, controller) => controller.enqueue(chunk.text) }));
}
