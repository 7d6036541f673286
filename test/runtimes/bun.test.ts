/** edge-sse's built package under Bun (Bun.serve): see suite.ts. */
import { describe } from 'vitest';
import { runtimeSuite } from './suite.ts';

describe('edge-sse under Bun (Bun.serve)', () => runtimeSuite('bun'));
