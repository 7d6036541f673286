/**
 * Every Lua script edge-sse sends to Redis, by body. `edge-sse-bridge` runs these and, unless its
 * operator opts in, no other script: a script can touch any key and block Redis.
 */
import { PUBLISH_SCRIPT } from './commands/publish.js';

export const EDGE_SSE_SCRIPTS: readonly string[] = [PUBLISH_SCRIPT.body];
