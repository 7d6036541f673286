import type { Backend } from './backends/types.js';
import { type StreamHandler, type StreamHandlerOptions, createStreamHandler } from './handler.js';
import { type EventInput, type PublishOptions, sendEvent, sendEvents } from './publish.js';

export interface SSEOptions extends StreamHandlerOptions, Omit<PublishOptions, 'backend'> {}

export interface SSE {
  backend: Backend;
  /** `GET` handler: `export const GET = sse.handler`. */
  handler: StreamHandler;
  sendEvent(type: string, data: unknown, options?: { channel?: string }): Promise<string>;
  sendEvents(events: readonly EventInput[]): Promise<string[]>;
}

/** One backend and shared defaults for streaming and publishing: Flask-SSE's blueprint and `send_event`. */
export function createSSE(options: SSEOptions): SSE {
  const handler = createStreamHandler(options);
  const publishing: PublishOptions = {
    backend: options.backend,
    maxEventBytes: options.maxEventBytes,
    maxLength: options.maxLength,
    ttlSeconds: options.ttlSeconds,
  };
  return {
    backend: options.backend,
    handler,
    sendEvent: (type, data, { channel } = {}) => sendEvent(type, data, { ...publishing, channel }),
    sendEvents: (events) => sendEvents(events, publishing),
  };
}
