export { createBridge, type Bridge, type BridgeOptions } from './server.js';
export type { BridgeStats } from './stats.js';
export { DEFAULT_ALLOWED_COMMANDS } from './commands.js';
