export {
  createSSE,
  type EventsOf,
  type SSE,
  type SSEOptions,
  type TypedEventInput,
  type TypedSSEOptions,
} from './sse.js';
export {
  SchemaValidationError,
  type AnyEvents,
  type EventMap,
  type SchemaInputs,
  type SchemaMap,
  type SchemaOutputs,
  type StandardSchemaV1,
} from './schema.js';
export {
  createStreamHandler,
  type Authorize,
  type AuthorizeResult,
  type StreamHandler,
  type StreamHandlerOptions,
} from './handler.js';
export {
  sendEvent,
  sendEvents,
  type EventInput,
  type IdempotencyOptions,
  type PublishOptions,
  type SendEventOptions,
} from './publish.js';
export { memoryBackend, type MemoryBackendOptions } from './backends/memory.js';
export type * from './backends/types.js';
export type { CorsOption } from './cors.js';
export type { CloseReason } from './session.js';
export type { StreamHooks, StreamInfo, StreamStats } from './observe.js';
export {
  channelTokenAuthorizer,
  createChannelToken,
  verifyChannelToken,
  type ChannelGrant,
  type ChannelTokenAuthorizerOptions,
  type ChannelTokenOptions,
} from './token.js';
export { BackendError, EdgeSSEError, ValidationError, type EdgeSSEErrorCode } from './errors.js';
export { formatComment, formatData, formatEvent, formatRetry, type SSEFrame } from './frames.js';
export { formatCursor, parseCursor } from './cursor.js';
export { compareIds } from './ids.js';
export { DEFAULT_CHANNEL } from './names.js';
