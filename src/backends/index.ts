/**
 * edge-sse/backend — for writing a backend or speaking edge-sse's wire format yourself: the
 * contract every backend meets (contract.ts), how stream ids order, the `Last-Event-ID` cursor,
 * and the SSE frames the stream handler writes. An app needs none of it: its names are in `edge-sse`.
 */
export type * from './contract.js';
export { compareIds } from '../wire/ids.js';
export { formatCursor, parseCursor, type ParsedCursor } from '../wire/cursor.js';
export { formatComment, formatData, formatEvent, formatRetry, type SSEFrame } from '../wire/frames.js';
export { DEFAULT_CHANNEL } from '../wire/names.js';
