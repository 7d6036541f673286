import { ValidationError } from '../common/errors.js';

/**
 * The Standard Schema interface (https://standardschema.dev), version 1, which zod 4, valibot and
 * arktype implement. Declared here rather than imported: edge-sse takes no dependency for it.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaV1.Props<Input, Output>;
}

export declare namespace StandardSchemaV1 {
  interface Props<Input = unknown, Output = Input> {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (value: unknown) => Result<Output> | Promise<Result<Output>>;
    readonly types?: Types<Input, Output> | undefined;
  }
  type Result<Output> = SuccessResult<Output> | FailureResult;
  interface SuccessResult<Output> {
    readonly value: Output;
    readonly issues?: undefined;
  }
  interface FailureResult {
    readonly issues: ReadonlyArray<Issue>;
  }
  interface Issue {
    readonly message: string;
    readonly path?: ReadonlyArray<PropertyKey | PathSegment> | undefined;
  }
  interface PathSegment {
    readonly key: PropertyKey;
  }
  interface Types<Input = unknown, Output = Input> {
    readonly input: Input;
    readonly output: Output;
  }
  type InferInput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['input'];
  type InferOutput<Schema extends StandardSchemaV1> = NonNullable<Schema['~standard']['types']>['output'];
}

/** Event names to payload types: `{ 'order.updated': { id: string; total: number } }`. */
export type EventMap = Record<string, unknown>;

/** What an untyped `createSSE` or `subscribe` accepts: any name, any data. */
export type AnyEvents = Record<string, unknown>;

/** Event names to the Standard Schema validating each one's data. */
export type SchemaMap = Record<string, StandardSchemaV1>;

/** The payload types a schema map accepts (what `sendEvent` takes). */
export type SchemaInputs<Schemas extends SchemaMap> = {
  [Type in keyof Schemas]: StandardSchemaV1.InferInput<Schemas[Type]>;
};

/** The payload types a schema map produces (what is published, and what listeners get). */
export type SchemaOutputs<Schemas extends SchemaMap> = {
  [Type in keyof Schemas]: StandardSchemaV1.InferOutput<Schemas[Type]>;
};

/** A ValidationError for data a schema refused; `issues` are the schema's own. */
export class SchemaValidationError extends ValidationError {
  static override readonly kind: string = 'SchemaValidationError';
  override name = 'SchemaValidationError';

  constructor(
    readonly eventType: string,
    readonly issues: ReadonlyArray<StandardSchemaV1.Issue>,
  ) {
    super('INVALID_DATA', `Event "${eventType}" has invalid data${describeIssue(issues[0])}`);
  }
}

/**
 * Runs `schema` on `value`: its output, or a SchemaValidationError. Synchronous when the schema
 * is, so a client can keep delivering events in order without waiting a tick.
 */
export function validateData(schema: StandardSchemaV1, eventType: string, value: unknown): unknown | Promise<unknown> {
  const result = schema['~standard'].validate(value);
  return result instanceof Promise ? result.then((settled) => unwrap(settled, eventType)) : unwrap(result, eventType);
}

function unwrap(result: StandardSchemaV1.Result<unknown>, eventType: string): unknown {
  if (result.issues) throw new SchemaValidationError(eventType, result.issues);
  return result.value;
}

function describeIssue(issue: StandardSchemaV1.Issue | undefined): string {
  if (!issue) return '';
  const path = (issue.path ?? []).map((segment) => String(typeof segment === 'object' ? segment.key : segment));
  return path.length > 0 ? ` at ${path.join('.')}: ${issue.message}` : `: ${issue.message}`;
}

export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  const props = (value as StandardSchemaV1 | null)?.['~standard'];
  return typeof props === 'object' && props !== null && props.version === 1 && typeof props.validate === 'function';
}
