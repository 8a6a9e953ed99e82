import { describe, expect, it } from 'vitest';
import {
  CfgdError,
  configKey,
  configUuid,
  planWrite,
  validateName,
  validateValues,
  validateVersion,
  type ConfigKey,
} from '../../src/domain/index.js';

const limits = { maxBytes: 100, maxDepth: 3 };

function errorOf(fn: () => unknown): CfgdError {
  try {
    fn();
  } catch (error: unknown) {
    if (error instanceof CfgdError) return error;
    throw error;
  }
  throw new Error('expected a CfgdError');
}

describe('names', () => {
  it.each(['1', 'test', 'A-z_0.9', 'x'.repeat(128)])('accepts %j', (name) => {
    expect(validateName('user_id', name)).toBe(name);
  });

  it.each([
    ['', 'NAME_REQUIRED'],
    ['x'.repeat(129), 'NAME_TOO_LONG'],
    ['a/b', 'NAME_INVALID'],
    ['a b', 'NAME_INVALID'],
    ['tab\t', 'NAME_INVALID'],
    ['é', 'NAME_INVALID'],
    ['a:watch', 'NAME_INVALID'],
  ])('rejects %j with %s naming the field', (name, reason) => {
    const error = errorOf(() => validateName('config_name', name));
    expect(error.kind).toBe('invalid-argument');
    expect(error.reason).toBe(reason);
    expect(error.message).toMatch(/^config_name: /);
    expect(error.fieldViolations[0]?.field).toBe('config_name');
  });

  it('derives a stable UUID v5 from the pair', () => {
    const id = configUuid(configKey('1', 'test'));
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(configUuid(configKey('1', 'test'))).toBe(id);
    expect(configUuid(configKey('1', 'test2'))).not.toBe(id);
    expect(configUuid(configKey('1-t', 'est'))).not.toBe(configUuid(configKey('1', 't-est')));
  });
});

describe('values', () => {
  it('accepts objects within the limits', () => {
    expect(validateValues({ a: { b: [1] } }, limits)).toEqual({ a: { b: [1] } });
  });

  it.each([
    [[1], 'an array'],
    ['s', 'a string'],
    [3, 'a number'],
    [null, 'null'],
    [true, 'a boolean'],
  ])('rejects %j as not an object', (value, what) => {
    const error = errorOf(() => validateValues(value, limits));
    expect(error.reason).toBe('VALUES_NOT_OBJECT');
    expect(error.message).toContain(what);
  });

  it('rejects missing values', () => {
    expect(errorOf(() => validateValues(undefined, limits)).reason).toBe('VALUES_REQUIRED');
  });

  it('rejects nesting deeper than the limit, counting arrays', () => {
    expect(validateValues({ a: { b: 1 } }, limits)).toBeDefined();
    expect(validateValues({ a: [[1]] }, limits)).toBeDefined();
    expect(validateValues({ a: { b: { c: 1 } } }, limits)).toBeDefined();
    expect(errorOf(() => validateValues({ a: { b: { c: {} } } }, limits)).reason).toBe('VALUES_TOO_DEEP');
    expect(errorOf(() => validateValues({ a: [[[1]]] }, limits)).reason).toBe('VALUES_TOO_DEEP');
  });

  it('rejects values whose JSON encoding exceeds the byte limit, counting UTF-8 bytes', () => {
    // {"k":"…"} is 8 bytes of framing.
    expect(validateValues({ k: 'x'.repeat(92) }, limits)).toBeDefined();
    expect(errorOf(() => validateValues({ k: 'x'.repeat(93) }, limits)).reason).toBe('VALUES_TOO_LARGE');
    expect(errorOf(() => validateValues({ k: 'é'.repeat(47) }, limits)).reason).toBe('VALUES_TOO_LARGE');
  });

  it('rejects non-finite numbers', () => {
    expect(errorOf(() => validateValues({ n: Number.NaN }, limits)).reason).toBe('VALUES_NOT_JSON');
    expect(errorOf(() => validateValues({ n: [Infinity] }, limits)).reason).toBe('VALUES_NOT_JSON');
  });

  it('rejects keys and strings that are not well-formed Unicode (lone surrogates), anywhere in the tree', () => {
    for (const values of [{ s: '\ud800' }, { [`k\udc00`]: 1 }, { a: [{ b: 'x\udbffy' }] }, { a: { ['\ud800']: {} } }]) {
      expect(errorOf(() => validateValues(values, limits)).reason).toBe('VALUES_NOT_UNICODE');
    }
    // A surrogate pair is one character, not a lone half.
    expect(validateValues({ '\ud83d\ude00': '\ud83d\ude00' }, limits)).toEqual({ '😀': '😀' });
  });
});

describe('versions and planWrite', () => {
  const key: ConfigKey = { userId: '1', configName: 'test' };
  const now = new Date(0);

  it.each([-1, 1.5, Number.NaN, 2 ** 53])('rejects version %d', (v) => {
    expect(errorOf(() => validateVersion('version', v)).reason).toBe('VERSION_INVALID');
  });

  it('creates version 1, then N+1 with the diff', () => {
    const first = planWrite(key, undefined, { values: { a: 1 }, author: 'me', now });
    if (first.kind !== 'create') throw new Error('expected create');
    expect(first.next.version).toBe(1);
    const second = planWrite(key, first.next, { values: { a: 2 }, author: 'me', now });
    if (second.kind !== 'create') throw new Error('expected create');
    expect(second.next.version).toBe(2);
    expect(second.next.audit.changes).toEqual([{ action: 'updated', key: 'a', value: 2, oldValue: 1 }]);
  });

  it('returns the current version unchanged for equal values', () => {
    const first = planWrite(key, undefined, { values: { a: 1 }, author: 'me', now });
    if (first.kind !== 'create') throw new Error('expected create');
    expect(planWrite(key, first.next, { values: { a: 1.0 }, author: 'me', now })).toEqual({
      kind: 'unchanged',
      current: first.next,
    });
  });

  it('compare-and-set: 0 means must not exist, N means must be at N', () => {
    const first = planWrite(key, undefined, { values: { a: 1 }, expectedVersion: 0, author: 'me', now });
    if (first.kind !== 'create') throw new Error('expected create');
    const error = errorOf(() =>
      planWrite(key, first.next, { values: { a: 2 }, expectedVersion: 0, author: 'me', now }),
    );
    expect(error.kind).toBe('version-mismatch');
    expect(error.metadata).toEqual({ expected_version: '0', current_version: '1' });
    expect(errorOf(() => planWrite(key, undefined, { values: {}, expectedVersion: 3, author: 'me', now })).kind).toBe(
      'version-mismatch',
    );
    expect(planWrite(key, first.next, { values: { a: 2 }, expectedVersion: 1, author: 'me', now }).kind).toBe('create');
  });
});
