import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { apply, diff, jsonEqual, type JsonObject, type JsonValue } from '../../src/domain/index.js';

// Keys from a small pool, so that random pairs share keys and exercise
// removed, updated and added at once.
const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', '__proto__', 'constructor', '');
const json: fc.Arbitrary<JsonValue> = fc.jsonValue({ maxDepth: 4 }) as fc.Arbitrary<JsonValue>;
const object: fc.Arbitrary<JsonObject> = fc.dictionary(key, json, { maxKeys: 6 });

describe('diff and apply', () => {
  it('apply(diff(a, b), a) equals b for random nested objects', () => {
    fc.assert(
      fc.property(object, object, (a, b) => {
        expect(jsonEqual(apply(diff(a, b), a), b)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('diff of equal objects is empty, whatever the key order inside', () => {
    fc.assert(
      fc.property(object, (a) => {
        const reversed = JSON.parse(JSON.stringify(a), (_k, v: unknown) =>
          v !== null && typeof v === 'object' && !Array.isArray(v)
            ? Object.fromEntries(Object.entries(v).reverse())
            : v,
        ) as JsonObject;
        expect(diff(a, reversed)).toEqual([]);
      }),
    );
  });

  it('orders removed and updated by the old keys, then added by the new keys', () => {
    fc.assert(
      fc.property(object, object, (a, b) => {
        const changes = diff(a, b);
        const firstAdded = changes.findIndex((c) => c.action === 'added');
        const head = firstAdded === -1 ? changes : changes.slice(0, firstAdded);
        const tail = firstAdded === -1 ? [] : changes.slice(firstAdded);
        expect(tail.every((c) => c.action === 'added')).toBe(true);
        const oldOrder = Object.keys(a);
        expect(head.map((c) => oldOrder.indexOf(c.key))).toEqual(
          [...head.map((c) => oldOrder.indexOf(c.key))].sort((x, y) => x - y),
        );
        const newOrder = Object.keys(b);
        expect(tail.map((c) => newOrder.indexOf(c.key))).toEqual(
          [...tail.map((c) => newOrder.indexOf(c.key))].sort((x, y) => x - y),
        );
      }),
    );
  });

  it('matches the seed: first write adds test', () => {
    expect(diff({}, { test: 1 })).toEqual([{ action: 'added', key: 'test', value: 1 }]);
  });

  it('matches the seed: replacing test with hello removes then adds', () => {
    expect(diff({ test: 1 }, { hello: 'world' })).toEqual([
      { action: 'removed', key: 'test', value: 1 },
      { action: 'added', key: 'hello', value: 'world' },
    ]);
  });

  it('reports updated keys with the new value and the old value', () => {
    expect(diff({ a: 1, b: { x: [1, 2] }, c: true }, { a: 2, b: { x: [1, 3] }, c: true })).toEqual([
      { action: 'updated', key: 'a', value: 2, oldValue: 1 },
      { action: 'updated', key: 'b', value: { x: [1, 3] }, oldValue: { x: [1, 2] } },
    ]);
  });

  it('treats 1 and 1.0 as equal and nested key order as no change', () => {
    expect(diff({ n: 1, o: { a: 1, b: 2 } }, { n: 1.0, o: { b: 2, a: 1 } })).toEqual([]);
  });

  it('treats null, missing and type changes as distinct values', () => {
    expect(diff({ a: null, b: 0, c: [] }, { a: 0, b: '0', c: {} })).toEqual([
      { action: 'updated', key: 'a', value: 0, oldValue: null },
      { action: 'updated', key: 'b', value: '0', oldValue: 0 },
      { action: 'updated', key: 'c', value: {}, oldValue: [] },
    ]);
    expect(diff({ a: null }, {})).toEqual([{ action: 'removed', key: 'a', value: null }]);
  });

  it('keeps a "__proto__" key as data', () => {
    const before = JSON.parse('{"__proto__": 1}') as JsonObject;
    const after = apply(diff({}, before), {});
    expect(Object.keys(after)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(after)).toBe(Object.prototype);
  });
});
