/**
 * Error classes as apps branch on them: by `instanceof` and `code`, across the ESM and CJS builds
 * an app may load side by side (an `import` of its own, a dependency's `require`).
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import * as source from '../src/index.js';

const require = createRequire(import.meta.url);
type Build = typeof source;

async function builds(): Promise<[Build, Build]> {
  const esm = (await import('../dist/index.js' as string)) as Build;
  const cjs = require('../dist/index.cjs') as Build;
  return [esm, cjs];
}

async function refusal(build: Build, type: string, data: unknown): Promise<unknown> {
  return build.sendEvent(type, data, { backend: build.memoryBackend() }).then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe('error classes', () => {
  it('hold instanceof across the ESM and CJS builds, by kind', async () => {
    const [esm, cjs] = await builds();
    expect(esm.ValidationError).not.toBe(cjs.ValidationError); // two copies, as an app gets them
    const fromCjs = await refusal(cjs, '', 'x');
    const fromEsm = await refusal(esm, '', 'x');
    for (const build of [esm, cjs, source]) {
      expect(fromCjs).toBeInstanceOf(build.ValidationError);
      expect(fromCjs).toBeInstanceOf(build.EdgeSSEError);
      expect(fromEsm).toBeInstanceOf(build.ValidationError);
      expect(fromCjs).not.toBeInstanceOf(build.BackendError);
      expect(fromCjs).not.toBeInstanceOf(build.SchemaValidationError);
    }
    expect(fromCjs).toBeInstanceOf(Error);
    expect((fromCjs as source.ValidationError).code).toBe('INVALID_EVENT_TYPE');
  });

  it('keep subclass kinds apart, and check an app subclass without a kind the usual way', () => {
    const schemaError = new source.SchemaValidationError('order', []);
    expect(schemaError).toBeInstanceOf(source.SchemaValidationError);
    expect(schemaError).toBeInstanceOf(source.ValidationError);
    expect(new source.ValidationError('INVALID_DATA', 'x')).not.toBeInstanceOf(source.SchemaValidationError);

    class AppError extends source.BackendError {}
    expect(new AppError('BACKEND_ERROR', 'x')).toBeInstanceOf(AppError);
    expect(new AppError('BACKEND_ERROR', 'x')).toBeInstanceOf(source.BackendError);
    expect(new source.BackendError('BACKEND_ERROR', 'x')).not.toBeInstanceOf(AppError);
    expect({ code: 'INVALID_DATA' }).not.toBeInstanceOf(source.ValidationError);
    expect(null).not.toBeInstanceOf(source.EdgeSSEError);
  });
});
