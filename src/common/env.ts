export type Env = Record<string, string | undefined>;

/** Where defaults come from: the `env` given (Workers bindings, tests), else `process.env` where it exists. */
export function resolveEnv(env: Env | undefined): Env {
  if (env !== undefined) return env;
  return typeof process !== 'undefined' && process.env ? process.env : {};
}
