/**
 * The part of workerd's `cloudflare:workers` module edge-sse/cloudflare uses, so the library
 * compiles without @cloudflare/workers-types. Only src/cloudflare imports the module; the build
 * leaves it to the Worker's bundler (it exists only inside workerd).
 */
declare module 'cloudflare:workers' {
  export interface DurableObjectStorageLike {
    setAlarm(scheduledTime: number, options?: { allowUnconfirmed?: boolean }): Promise<void>;
  }

  export interface DurableObjectStateLike {
    readonly storage: DurableObjectStorageLike;
  }

  export abstract class DurableObject<Env = unknown> {
    protected ctx: DurableObjectStateLike;
    protected env: Env;
    constructor(ctx: DurableObjectStateLike, env: Env);
  }
}
