export {
  createSSE,
  type EventsOf,
  type SSE,
  type SSEOptions,
  type TypedEventInput,
  type TypedSSEOptions,
} from './publish/sse.js';
export {
  SchemaValidationError,
  type AnyEvents,
  type EventMap,
  type SchemaInputs,
  type SchemaMap,
  type SchemaOutputs,
  type StandardSchemaV1,
} from './publish/schema.js';
export {
  createStreamHandler,
  type Authorize,
  type AuthorizeResult,
  type StreamHandler,
  type StreamHandlerOptions,
} from './server/handler.js';
export {
  sendEvent,
  sendEvents,
  type EventInput,
  type IdempotencyOptions,
  type PublishOptions,
  type SendEventOptions,
} from './publish/publish.js';
export { memoryBackend, type MemoryBackendOptions } from './backends/memory/index.js';
export type { Backend } from './backends/contract.js';
export type { CorsOption } from './server/cors.js';
export type { CloseReason } from './server/session.js';
export type { StreamHooks, StreamInfo, StreamStats } from './server/observe.js';
export {
  channelTokenAuthorizer,
  createChannelToken,
  verifyChannelToken,
  type ChannelGrant,
  type ChannelTokenAuthorizerOptions,
  type ChannelTokenOptions,
} from './server/token.js';
export { BackendError, EdgeSSEError, ValidationError, type EdgeSSEErrorCode } from './common/errors.js';
