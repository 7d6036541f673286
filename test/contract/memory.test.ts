import { memoryBackend } from '../../src/index.js';
import { runBackendContract } from './backend-contract.js';

runBackendContract('memory', async () => ({ backend: memoryBackend(), exactTrim: true }));
