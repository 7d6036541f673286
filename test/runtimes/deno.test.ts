/** edge-sse's built package under Deno (Deno.serve): see suite.ts. */
import { describe } from 'vitest';
import { runtimeSuite } from './suite.ts';

describe('edge-sse under Deno (Deno.serve)', () => runtimeSuite('deno'));
