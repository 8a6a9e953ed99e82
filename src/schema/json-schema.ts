/**
 * JSON Schemas (draft 2020-12) as cfgd accepts them from its users: compiled
 * once with ajv, with formats from ajv-formats, every regular expression
 * (`pattern`, `patternProperties`) run by re2js, a linear-time engine, so
 * that no schema can stall the server with a catastrophically backtracking
 * pattern; no `$ref` outside the schema itself (nothing is ever fetched or
 * read); bounded size and depth. Schemas are user input: a schema cfgd
 * cannot take is INVALID_ARGUMENT (SCHEMA_INVALID) saying why.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { RE2JS } from 're2js';
import { CfgdError, type JsonObject, type Violation } from '../domain/index.js';

/** Limits on the schemas cfgd compiles. */
export interface SchemaLimits {
  /** Largest schema, JSON-encoded, in bytes. */
  readonly maxBytes: number;
  /** Deepest nesting of the schema document. */
  readonly maxDepth: number;
}

export const DEFAULT_SCHEMA_LIMITS: SchemaLimits = { maxBytes: 256 * 1024, maxDepth: 64 };

export { MAX_VIOLATIONS } from '../domain/index.js';

export type { Violation } from '../domain/index.js';

/** A schema compiled once, shared by every request that checks values against it. */
export interface CompiledSchema {
  /** Every violation of `values`, or none (errors list at most `MAX_VIOLATIONS` of them). */
  check(values: JsonObject): Violation[];
  /** Lets the compiler forget it (ajv keeps what it compiled until told). */
  dispose(): void;
}

/** The regular expression engine ajv runs for `pattern` and `patternProperties`: re2js, linear time. */
function linearRegExp(pattern: string): { test(text: string): boolean; toString(): string } {
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(RE2JS.translateRegExp(pattern));
  } catch (error: unknown) {
    throw new SchemaCompileError(
      `pattern ${JSON.stringify(pattern)} cannot run in linear time (backreferences and lookaround are not supported): ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }
  // ajv caches compiled patterns by this string: it must identify the pattern.
  return { test: (text) => compiled.test(text), toString: () => `re2js:${pattern}` };
}
linearRegExp.code = 're2js';

class SchemaCompileError extends Error {}

/**
 * Compiles schemas. One instance per process: ajv keeps what it compiled,
 * so the same schema is not compiled twice.
 */
export class SchemaCompiler {
  private readonly ajv: Ajv2020;

  constructor(private readonly limits: SchemaLimits = DEFAULT_SCHEMA_LIMITS) {
    this.ajv = new Ajv2020({
      allErrors: true,
      // Unknown keywords and malformed numbers are errors in the schema; the stricter checks on
      // types and `required` reject schemas that are valid JSON Schema, so they stay off.
      strictSchema: true,
      strictNumbers: true,
      strictTypes: false,
      strictTuples: false,
      strictRequired: false,
      // Unknown formats are an error in the schema, not a silent pass.
      validateFormats: true,
      code: { regExp: linearRegExp },
      // No loadSchema: a $ref that is not in the schema cannot be resolved, and compile says so.
      addUsedSchema: false,
      inlineRefs: true,
    });
    addFormats.default(this.ajv);
  }

  /**
   * The schema compiled, or INVALID_ARGUMENT (SCHEMA_INVALID) naming what is
   * wrong: not an object or boolean, too large or deep, not valid draft
   * 2020-12, a `$ref` outside the schema, a pattern RE2 cannot run.
   */
  compile(schema: unknown): CompiledSchema {
    if (typeof schema !== 'boolean' && (typeof schema !== 'object' || schema === null || Array.isArray(schema))) {
      throw invalidSchema('must be a JSON object (or true/false)');
    }
    const text = JSON.stringify(schema);
    if (Buffer.byteLength(text) > this.limits.maxBytes) {
      throw invalidSchema(`is larger than ${this.limits.maxBytes} bytes`);
    }
    if (depthOf(schema) > this.limits.maxDepth) throw invalidSchema(`nests deeper than ${this.limits.maxDepth} levels`);
    refuseOutsideRefs(schema);
    let validate: ValidateFunction;
    // A fresh copy: ajv keeps it, as the key of what it compiled, until `dispose`.
    const copy = JSON.parse(text) as object;
    try {
      validate = this.ajv.compile(copy);
    } catch (error: unknown) {
      this.ajv.removeSchema(copy);
      throw invalidSchema(error instanceof Error ? error.message : String(error));
    }
    const ajv = this.ajv;
    return {
      check(values) {
        if (validate(values)) return [];
        return (validate.errors ?? []).map(toViolation);
      },
      dispose() {
        ajv.removeSchema(copy);
      },
    };
  }
}

function toViolation(error: ErrorObject): Violation {
  const params = error.params as { missingProperty?: string; additionalProperty?: string };
  const child = params.missingProperty ?? params.additionalProperty;
  const path = child === undefined ? error.instancePath : `${error.instancePath}/${escapePointer(child)}`;
  return { path, description: error.message ?? `fails ${error.keyword}`, keyword: error.keyword };
}

function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** Refuses a `$ref` or `$dynamicRef` that points outside the schema document (anything but `#…`). */
function refuseOutsideRefs(node: unknown): void {
  if (typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) {
    for (const item of node) refuseOutsideRefs(item);
    return;
  }
  for (const [key, value] of Object.entries(node)) {
    if ((key === '$ref' || key === '$dynamicRef') && (typeof value !== 'string' || !value.startsWith('#'))) {
      throw invalidSchema(
        `${key} ${JSON.stringify(value)} points outside the schema; only local references (#…) are allowed`,
      );
    }
    refuseOutsideRefs(value);
  }
}

function depthOf(node: unknown): number {
  if (typeof node !== 'object' || node === null) return 0;
  let deepest = 0;
  for (const value of Array.isArray(node) ? node : Object.values(node)) deepest = Math.max(deepest, depthOf(value));
  return deepest + 1;
}

function invalidSchema(why: string): CfgdError {
  return new CfgdError('invalid-argument', 'SCHEMA_INVALID', `schema: ${why}`, {
    metadata: { field: 'schema' },
    fieldViolations: [{ field: 'schema', description: why }],
  });
}
