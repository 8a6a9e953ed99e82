import { CfgdError, invalidField } from './errors.js';

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export interface ValueLimits {
  /** Largest accepted UTF-8 size of the values encoded as JSON. */
  readonly maxBytes: number;
  /** Deepest accepted nesting; the values object itself is depth 1. */
  readonly maxDepth: number;
}

export const DEFAULT_VALUE_LIMITS: ValueLimits = { maxBytes: 1024 * 1024, maxDepth: 32 };

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/**
 * Checks that `value` is a JSON object within `limits` and returns it.
 * Throws INVALID_ARGUMENT naming `field` otherwise.
 */
export function validateValues(value: unknown, limits: ValueLimits, field = 'values'): JsonObject {
  if (value === undefined) throw invalidField(field, 'VALUES_REQUIRED', 'is required and must be a JSON object');
  if (!isJsonObject(value)) {
    throw invalidField(field, 'VALUES_NOT_OBJECT', `must be a JSON object, got ${describe(value)}`);
  }
  checkTree(value, 1, limits.maxDepth, field);
  const bytes = utf8Length(JSON.stringify(value));
  if (bytes > limits.maxBytes) {
    throw new CfgdError(
      'invalid-argument',
      'VALUES_TOO_LARGE',
      `${field}: encoded size ${bytes} bytes exceeds the limit of ${limits.maxBytes} bytes`,
      {
        metadata: { field, size: String(bytes), limit: String(limits.maxBytes) },
        fieldViolations: [{ field, description: `must encode to at most ${limits.maxBytes} bytes` }],
      },
    );
  }
  return value;
}

/** A UTF-16 surrogate without its other half: no UTF-8 text (and so no protobuf string) can hold it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The first string (key or value) in a JSON tree that is not well-formed
 * Unicode, such as the text of the JSON escape `"\ud800"`; undefined when
 * there is none. Such text cannot cross a UTF-8 transport unchanged, so it is
 * refused rather than stored as U+FFFD on one path and kept on another.
 */
export function findLoneSurrogate(value: unknown): string | undefined {
  // Iterative: a request body can nest far deeper than the call stack goes.
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (typeof next === 'string') {
      if (LONE_SURROGATE.test(next)) return next;
    } else if (Array.isArray(next)) {
      for (const item of next) pending.push(item);
    } else if (typeof next === 'object' && next !== null) {
      for (const [key, item] of Object.entries(next)) {
        if (LONE_SURROGATE.test(key)) return key;
        pending.push(item);
      }
    }
  }
  return undefined;
}

/** Walks the tree, rejecting non-JSON leaves, text that is not Unicode and nesting deeper than `maxDepth`. */
function checkTree(value: unknown, depth: number, maxDepth: number, field: string): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalidField(field, 'VALUES_NOT_JSON', 'numbers must be finite');
    return;
  }
  if (typeof value === 'string') {
    if (LONE_SURROGATE.test(value)) throw notUnicode(field);
    return;
  }
  if (value === null || typeof value === 'boolean') return;
  if (typeof value !== 'object') throw invalidField(field, 'VALUES_NOT_JSON', `contains ${describe(value)}`);
  if (depth > maxDepth) {
    throw new CfgdError(
      'invalid-argument',
      'VALUES_TOO_DEEP',
      `${field}: nesting exceeds the limit of ${maxDepth} levels`,
      {
        metadata: { field, limit: String(maxDepth) },
        fieldViolations: [{ field, description: `must nest at most ${maxDepth} levels` }],
      },
    );
  }
  if (!Array.isArray(value)) {
    for (const key of Object.keys(value)) if (LONE_SURROGATE.test(key)) throw notUnicode(field);
  }
  const children = Array.isArray(value) ? value : Object.values(value as Record<string, unknown>);
  for (const child of children) checkTree(child, depth + 1, maxDepth, field);
}

function notUnicode(field: string): CfgdError {
  return invalidField(
    field,
    'VALUES_NOT_UNICODE',
    'keys and strings must be well-formed Unicode (a lone surrogate such as \\ud800 is not)',
  );
}

// TextEncoder is a web-platform global: the core stays free of node:* imports.
const encoder = new TextEncoder();

function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

/**
 * JSON equality: arrays by position, objects by key set regardless of key order,
 * numbers by value (so 1 and 1.0 are equal).
 */
export function jsonEqual(a: JsonValue, b: JsonValue): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => jsonEqual(item, b[i] as JsonValue));
  }
  const aKeys = Object.keys(a);
  if (aKeys.length !== Object.keys(b).length) return false;
  return aKeys.every((key) => Object.hasOwn(b, key) && jsonEqual(a[key] as JsonValue, b[key] as JsonValue));
}
