/**
 * `edge-sse/client`: a small helper over the browser's EventSource. Imports nothing from the
 * server side but the error classes, the id comparison and the schema runner.
 */
export { subscribe } from './subscribe.js';
export { decodeData, isJsonCursor } from './cursor.js';
export { defaultReconnect } from './reconnect.js';
export type {
  ConnectionState,
  EventMeta,
  EventSourceConstructor,
  EventSourceLike,
  Gap,
  Handlers,
  ReconnectPolicy,
  SchemaSubscribeOptions,
  SubscribeOptions,
  Unsubscribe,
} from './types.js';
export { EdgeSSEError, ValidationError } from '../common/errors.js';
export { SchemaValidationError } from '../publish/schema.js';
export type { AnyEvents, EventMap, SchemaMap, SchemaOutputs, StandardSchemaV1 } from '../publish/schema.js';
