/**
 * The web console's pure parts, without a browser: what the principal's
 * grants let the console offer, the JSON diff of two versions, and where a
 * field violation points in the editor's text.
 */
import { describe, expect, it } from 'vitest';
import { diffJson, formatLine } from '../../src/console/diff.js';
import { allows, allowsSomeOf, coversAnyUser, namedUsers } from '../../src/console/grants.js';
import { locate, valuesPath } from '../../src/console/json-locate.js';

describe('console grants', () => {
  const grants = [
    { verb: 'read', resource: 'users/alice/configs/*' },
    { verb: 'write', resource: 'users/alice/configs/app' },
    { verb: 'admin', resource: 'users/*/configs/shared' },
    { verb: 'watch', resource: 'not a resource' },
  ];

  it('allows a verb where a grant of it, or admin, covers the user and the config', () => {
    expect(allows(grants, 'read', 'alice', 'anything')).toBe(true);
    expect(allows(grants, 'write', 'alice', 'app')).toBe(true);
    expect(allows(grants, 'write', 'alice', 'other')).toBe(false);
    expect(allows(grants, 'write', 'bob', 'shared')).toBe(true);
    expect(allows(grants, 'watch', 'bob', 'shared')).toBe(true);
    expect(allows(grants, 'read', 'bob', 'other')).toBe(false);
    expect(allows(grants, 'watch', 'alice', 'app')).toBe(false);
    expect(allowsSomeOf(grants, 'write', 'alice')).toBe(true);
    expect(allowsSomeOf(grants, 'read', 'carol')).toBe(true);
    expect(allowsSomeOf([{ verb: 'read', resource: 'users/alice/configs/*' }], 'read', 'carol')).toBe(false);
  });

  it('names the users of the grants, and knows when one covers every user', () => {
    expect(namedUsers(grants)).toEqual(['alice']);
    expect(coversAnyUser(grants)).toBe(true);
    expect(coversAnyUser(grants.slice(0, 2))).toBe(false);
  });
});

describe('console diff', () => {
  it('lists the changed paths: removed and changed in the old order, then added; nested and odd keys', () => {
    const lines = diffJson(
      { port: 80, limits: { rps: 10, burst: 20 }, hosts: ['a', 'b'], 'odd key': 1, gone: true },
      { port: 80, limits: { rps: 20, burst: 20 }, hosts: ['a', 'c', 'd'], 'odd key': 2, added: { x: 1 } },
    ).map(formatLine);
    expect(lines).toEqual([
      '~ limits.rps: 10 → 20',
      '~ hosts[1]: "b" → "c"',
      '+ hosts[2]: "d"',
      '~ ["odd key"]: 1 → 2',
      '- gone: true',
      '+ added: {"x":1}',
    ]);
  });

  it('finds no change between equal values whatever their key order, and one line for a change of kind', () => {
    expect(diffJson({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1.0 })).toEqual([]);
    expect(diffJson({ a: { b: 1 } }, { a: [1] }).map(formatLine)).toEqual(['~ a: {"b":1} → [1]']);
  });
});

describe('console: where a field violation points', () => {
  const text = '{\n  "port": "eighty",\n  "limits": { "rps": 10, "a/b": [1, 2] }\n}';

  it('reads the JSON pointer of a field violation and finds its value in the text', () => {
    expect(valuesPath('values/port')).toEqual(['port']);
    expect(valuesPath('values/limits/a~1b')).toEqual(['limits', 'a/b']);
    expect(valuesPath('expected_version')).toBeUndefined();
    const port = locate(text, ['port'])!;
    expect(text.slice(port.from, port.to)).toBe('"eighty"');
    const item = locate(text, ['limits', 'a/b', '1'])!;
    expect(text.slice(item.from, item.to)).toBe('2');
    // A property that is absent (a required one): the object that should hold it.
    const missing = locate(text, ['limits', 'burst'])!;
    expect(text[missing.from]).toBe('{');
  });
});
