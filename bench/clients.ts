/**
 * The listening side of the fan-out benchmark, identical for every server: reads SSE text,
 * spots the benchmark's events by their `"seq":N`, and reports when each arrives.
 */
import { Agent, type ClientRequest, get } from 'node:http';

const SEQ = /"seq":(\d+)/;
const READY = 'event: sse:ready';

export interface Listener {
  onSeq(seq: number): void;
  /** edge-sse's `sse:ready`: the connection is live. */
  onReady(): void;
}

/** Splits text into frames (at blank lines) and looks at each; the same work for every server. */
class FrameReader {
  private buffered = '';

  constructor(private listener: Listener) {}

  push(text: string): void {
    this.buffered += text;
    let end: number;
    while ((end = this.buffered.indexOf('\n\n')) !== -1) {
      this.frame(this.buffered.slice(0, end));
      this.buffered = this.buffered.slice(end + 2);
    }
  }

  private frame(frame: string): void {
    const match = SEQ.exec(frame);
    if (match) this.listener.onSeq(Number(match[1]));
    else if (frame.includes(READY)) this.listener.onReady();
  }
}

/** Reads a Response body in process, as a fetch client would. */
export async function readBody(body: ReadableStream<Uint8Array>, listener: Listener): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const frames = new FrameReader(listener);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      frames.push(decoder.decode(value, { stream: true }));
    }
  } catch {
    // Cancelled at teardown.
  }
}

/** An HTTP client on loopback (node:http, one socket per connection). */
export function openHttp(url: string, agent: Agent, listener: Listener): Promise<ClientRequest> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent, headers: { accept: 'text/event-stream' } }, (response) => {
      if (response.statusCode !== 200) return reject(new Error(`GET ${url}: ${response.statusCode}`));
      const frames = new FrameReader(listener);
      response.setEncoding('utf8');
      response.on('data', (text: string) => frames.push(text));
      response.on('error', () => {});
      resolve(request);
    });
    request.on('error', reject);
  });
}

export function loopbackAgent(): Agent {
  return new Agent({ keepAlive: false, maxSockets: Infinity });
}

/** Times one broadcast: from just before publishing to each connection reading the event. */
export class Delivery {
  private seq = -1;
  private started = 0;
  private latencies: number[] = [];
  private finish: (() => void) | undefined;

  constructor(private connections: number) {}

  /** Starts the clock for `seq`, runs `publish`, resolves to every connection's latency in ms. */
  async measure(seq: number, publish: () => void, timeoutMs = 10_000): Promise<number[]> {
    this.seq = seq;
    this.latencies = [];
    const delivered = new Promise<void>((resolve) => {
      this.finish = resolve;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`broadcast ${seq}: ${this.latencies.length}/${this.connections} delivered after ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    this.started = performance.now();
    publish();
    try {
      await Promise.race([delivered, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return this.latencies;
  }

  arrived(seq: number): void {
    if (seq !== this.seq) return;
    this.latencies.push(performance.now() - this.started);
    if (this.latencies.length === this.connections) this.finish?.();
  }
}
