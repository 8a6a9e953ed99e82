import fc from 'fast-check';
import type { JsonObject, JsonValue } from '../../src/domain/index.js';

/**
 * Keys that trip code which treats a JSON object as a plain JS object:
 * Object.prototype's accessor and methods, names that look special elsewhere
 * (ReQL pseudo-types, dotted paths), empty and blank keys, and keys long enough
 * to need a multi-byte length prefix on the wire.
 */
export const ODD_KEYS: readonly string[] = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'isPrototypeOf',
  '__defineGetter__',
  '',
  ' ',
  '$reql_type$',
  'a.b',
  '0',
  'k'.repeat(300),
  'é'.repeat(5000),
];

/** Longer than 65,535 UTF-16 units and 16,383 UTF-8 bytes: a three-byte varint length on the wire. */
export const VERY_LONG_KEY = 'L'.repeat(70_000);

/** Object keys biased towards ODD_KEYS, with the very long key now and then. */
export const oddKey: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.constant('__proto__'), weight: 2 },
  { arbitrary: fc.constantFrom(...ODD_KEYS), weight: 6 },
  // Well-formed Unicode only: a lone surrogate is not valid UTF-8, so protobuf strings cannot carry it.
  { arbitrary: fc.string({ unit: 'binary', maxLength: 6 }), weight: 3 },
  { arbitrary: fc.constant(VERY_LONG_KEY), weight: 1 },
);

/**
 * Numbers as google.protobuf.Struct carries them: finite doubles (JSON has no
 * NaN or Infinity). -0 is included on purpose: JSON has one zero, so it is
 * expected back as 0 (`ownJson` prints both as `0`).
 */
const jsonNumber = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(-0));

const leaf: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  jsonNumber,
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom(...ODD_KEYS.slice(0, 8)),
);

/**
 * Builds objects with Object.fromEntries, which defines own data properties:
 * the `__proto__` key is a real key, never the prototype. Depth is bounded
 * (the server accepts 32 levels; gRPC decoding stops past 33).
 */
function objectOf(value: fc.Arbitrary<JsonValue>, maxKeys: number): fc.Arbitrary<JsonObject> {
  return fc
    .uniqueArray(fc.tuple(oddKey, value), { selector: ([key]) => key, maxLength: maxKeys })
    .map((entries): JsonObject => Object.fromEntries<JsonValue>(entries));
}

const tree = fc.letrec<{ value: JsonValue; object: JsonObject; array: JsonValue[] }>((tie) => ({
  value: fc.oneof({ depthIdentifier: 'json', maxDepth: 4, depthSize: 'small' }, leaf, tie('object'), tie('array')),
  object: objectOf(tie('value'), 4),
  array: fc.array(tie('value'), { maxLength: 3, depthIdentifier: 'json' }),
}));

/**
 * Encoded size bound of one generated object. Well under the server's 1 MiB, and small enough that a
 * gRPC response carrying a few versions with their changes (values and old values) stays under
 * grpc-js's default 4 MiB receive limit.
 */
export const MAX_OBJECT_BYTES = 256 * 1024;

/** A config's values: a JSON object with odd keys at every level. */
export const oddJsonObject: fc.Arbitrary<JsonObject> = objectOf(tree.value, 6).filter(
  (values) => Buffer.byteLength(JSON.stringify(values)) <= MAX_OBJECT_BYTES,
);

/**
 * JSON text of `value` built from own property names only, keys sorted when
 * `sortKeys` (JSON objects are equal by key set). Throws when an object's
 * prototype is not a plain object's: a `__proto__` key that became the
 * prototype is a defect even if the text looked right. -0 prints as 0.
 */
export function ownJson(value: unknown, sortKeys = false): string {
  if (Array.isArray(value)) return `[${value.map((item) => ownJson(item, sortKeys)).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const prototype: unknown = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      throw new Error(`an object's prototype was replaced by ${JSON.stringify(prototype)}`);
    }
    const keys = Object.getOwnPropertyNames(value);
    if (sortKeys) keys.sort();
    const record = value as Record<string, unknown>;
    return `{${keys.map((key) => `${JSON.stringify(key)}:${ownJson(record[key], sortKeys)}`).join(',')}}`;
  }
  if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean' || value === null) {
    return JSON.stringify(value);
  }
  throw new Error(`not JSON: ${typeof value}`);
}

/** Shortens very long keys and strings, so that a failure report stays readable. */
export function abbreviate(json: string): string {
  return json.replace(/(.)\1{40,}/gu, (run, char: string) => `${char}…×${[...run].length}`);
}
