import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  apply,
  blameEntries,
  CfgdError,
  withBlame,
  checkChain,
  seal,
  jsonEqual,
  mergePatch,
  planDelete,
  planPatch,
  planRollback,
  planUndelete,
  planWrite,
  type ConfigKey,
  type ConfigVersion,
  type JsonObject,
  type JsonValue,
  type WritePlan,
} from '../../src/domain/index.js';

const key: ConfigKey = { userId: 'u', configName: 'c' };
const now = new Date('2026-07-08T09:10:11.000Z');
const who = { author: 'tester', now };

describe('mergePatch (RFC 7386)', () => {
  // RFC 7386, Appendix A, the cases whose target and patch are objects (values always are), plus
  // the non-object target of its last-but-one case one level down.
  const cases: [JsonObject, JsonObject, JsonObject][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [{ x: [1, 2] }, { x: { a: 'b', c: null } }, { x: { a: 'b' } }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  it.each(cases)('%j patched with %j is %j', (target, patch, result) => {
    const before = JSON.stringify(target);
    expect(mergePatch(target, patch)).toEqual(result);
    expect(JSON.stringify(target)).toBe(before);
  });

  it('keeps kept keys in place, appends new ones in the patch order, and keeps "__proto__" as data', () => {
    const target = JSON.parse('{"z":1,"__proto__":{"a":1},"m":2}') as JsonObject;
    const patched = mergePatch(target, JSON.parse('{"n":3,"__proto__":{"b":2},"z":null}') as JsonObject);
    expect(Object.keys(patched)).toEqual(['__proto__', 'm', 'n']);
    expect(Object.getOwnPropertyDescriptor(patched, '__proto__')?.value).toEqual({ a: 1, b: 2 });
    expect(Object.getPrototypeOf(patched)).toBe(Object.prototype);
  });
});

describe('the lifecycle, replayed', () => {
  const keyName = fc.constantFrom('a', 'b', 'c', 'd', '__proto__');
  const json = fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>;
  const values = fc.dictionary(keyName, json, { maxKeys: 4 }) as fc.Arbitrary<JsonObject>;
  const patch = fc.dictionary(keyName, fc.oneof(json, fc.constant(null)), { maxKeys: 3 }) as fc.Arbitrary<JsonObject>;
  const step = fc.oneof(
    values.map((v) => ({ op: 'put' as const, values: v })),
    patch.map((p) => ({ op: 'patch' as const, patch: p })),
    fc.nat(30).map((to) => ({ op: 'rollback' as const, to })),
    fc.constant({ op: 'delete' as const }),
    fc.constant({ op: 'undelete' as const }),
  );

  it('every entry applied to the previous values gives the next; versions are contiguous; the hash chain verifies', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        const history: ConfigVersion[] = [];
        for (const s of steps) {
          const current = history.at(-1);
          let plan: WritePlan;
          try {
            if (s.op === 'put') plan = planWrite(key, current, { values: s.values, ...who });
            else if (s.op === 'patch') plan = planPatch(key, current, { patch: s.patch, ...who }, undefined);
            else if (s.op === 'delete') plan = planDelete(key, current, who);
            else if (s.op === 'undelete') plan = planUndelete(key, current, who, undefined);
            else {
              const target = history[s.to % Math.max(history.length, 1)];
              if (target === undefined) continue;
              plan = planRollback(key, current, target, who, undefined);
              if (plan.kind === 'create') expect(plan.next.values).toEqual(target.values);
            }
          } catch (error: unknown) {
            // The only refusals: nothing to patch or delete, nothing to undelete, a tombstone as target.
            expect(error).toBeInstanceOf(CfgdError);
            expect(['CONFIG_NOT_FOUND', 'CONFIG_DELETED', 'CONFIG_NOT_DELETED', 'VERSION_HAS_NO_VALUES']).toContain(
              (error as CfgdError).reason,
            );
            continue;
          }
          const sealed = seal(withBlame(plan, current), current);
          if (sealed.kind === 'create') history.push(sealed.next);
        }
        // Blame, carried forward version by version, names for each key the last version that set it.
        history.forEach((version, i) => {
          for (const entry of blameEntries(version)) {
            const setter = history
              .slice(0, i + 1)
              .reverse()
              .find((v) => v.audit.changes.some((c) => c.key === entry.key && c.action !== 'removed'));
            expect(entry.version, `key ${entry.key} at version ${version.version}`).toBe(setter?.version);
            expect(entry.author).toBe(setter?.audit.author);
          }
        });
        // The hash chain verifies, and breaks at any version whose values are changed.
        expect(checkChain(history, () => undefined, undefined)).toBeUndefined();
        // (A tombstone holds no values to change: its hash covers their absence.)
        const victim = history.filter((v) => v.hasValues)[0];
        if (victim !== undefined) {
          const edited = history.map((v) => (v === victim ? { ...v, values: { ...v.values, edited: true } } : v));
          expect(checkChain(edited, () => undefined, undefined)).toEqual({
            version: victim.version,
            problem: 'content',
          });
        }
        let previous: JsonObject = {};
        history.forEach((version, i) => {
          expect(version.version).toBe(i + 1);
          expect(version.audit.version).toBe(version.version);
          expect(jsonEqual(apply(version.audit.changes, previous), version.values)).toBe(true);
          // Only a deletion holds no values, and it removes every key.
          expect(version.hasValues).toBe(version.audit.operation !== 'delete');
          if (!version.hasValues) expect(version.values).toEqual({});
          previous = version.values;
        });
      }),
      { numRuns: 1000 },
    );
  });
});
