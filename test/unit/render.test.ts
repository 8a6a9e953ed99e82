/**
 * The renderers of src/render: each format reads back, with a reader that is
 * not ours (yaml, the dotenv package and POSIX sh, dot-properties), to exactly
 * what was rendered; values a format cannot hold are refused naming the key.
 */
import { parse as dotenvParse } from 'dotenv';
import fc from 'fast-check';
import { parse as yamlParse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CfgdError, type JsonObject, type JsonValue } from '../../src/domain/index.js';
import { renderValues, type RenderFormat } from '../../src/render/render.js';
import { oddJsonObject, ownJson } from '../helpers/odd-json.js';
import { dotenvExact, envExpected, propertiesExpected, propertiesRead, shRead } from '../helpers/render-readers.js';

/** Text that has broken config files before: YAML's other types, shell syntax, escapes, line breaks, Unicode. */
const AWKWARD = [
  '',
  ' ',
  ' lead',
  'trail ',
  'two  spaces',
  'yes',
  'no',
  'on',
  'off',
  'y',
  'N',
  'true',
  'False',
  'null',
  '~',
  '1',
  '-1',
  '017',
  '0o17',
  '0x1F',
  '1e3',
  '1_000',
  '1:20',
  '.inf',
  '.NaN',
  '2001-12-14',
  '<<',
  '- item',
  '? key',
  ': x',
  'a: b',
  'a #b',
  '#comment',
  '!bang',
  '[a]',
  '{a}',
  '&anchor',
  '*alias',
  '|',
  '>',
  '%YAML',
  '@at',
  '---',
  '...',
  "it's",
  'say "hi"',
  '`date`',
  '$HOME',
  '${HOME}',
  '$(id)',
  'back\\slash',
  'ends\\',
  '\\n',
  '\\',
  "'",
  '"',
  'a=b',
  '=',
  'k=v#x',
  'line\nbreak',
  '\n',
  'crlf\r\nx',
  'cr\rx',
  'tab\tx',
  '\f',
  '\u0001\u001f\u007f',
  'é',
  'ü ß ☃',
  '😀',
  '\u0085',
  '\u00a0',
  '\u2028\u2029',
  '\ufeff',
  'mixed \'single\' and "double" and $var and `tick` and \\',
];

/** A string for a value: awkward text, or any text (well-formed Unicode, as stored values are). */
const text = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...AWKWARD) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 16 }) },
  {
    weight: 2,
    arbitrary: fc.string({ unit: fc.constantFrom(...'aZ09 ._-\'"$`\\#=:!\n\r\t{}[]&*|>%@,/+~;()<>?'), maxLength: 16 }),
  },
);

function run<T>(action: () => T): CfgdError {
  try {
    action();
  } catch (error: unknown) {
    if (error instanceof CfgdError) return error;
    throw error;
  }
  throw new Error('expected a CfgdError');
}

describe('json', () => {
  it('is the values indented by two spaces, keys in their order, with a final newline', () => {
    const values: JsonObject = Object.fromEntries<JsonValue>([
      ['b', 1],
      ['a', { z: [true, null], y: 'x' }],
      ['__proto__', 'own'],
    ]);
    expect(renderValues(values, 'json')).toBe(
      '{\n  "b": 1,\n  "a": {\n    "z": [\n      true,\n      null\n    ],\n    "y": "x"\n  },\n  "__proto__": "own"\n}\n',
    );
  });

  it('parses back to the values', () => {
    fc.assert(
      fc.property(oddJsonObject, (values) => {
        expect(ownJson(JSON.parse(renderValues(values, 'json')))).toBe(ownJson(values));
      }),
      { numRuns: 300 },
    );
  });
});

describe('yaml', () => {
  const yamlValues = fc.dictionary(
    text,
    fc.oneof(text, fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>, fc.array(text, { maxLength: 3 })),
    { maxKeys: 8 },
  );

  it('keeps strings that look like numbers, booleans, null or dates strings, in YAML 1.2 and 1.1', () => {
    const values: JsonObject = Object.fromEntries(AWKWARD.map((value, i) => [`k${i}`, value]));
    Object.assign(values, { '<<': 'merge?', yes: 'no', n: 1, t: true, z: null, s: '017', d: '2001-12-14' });
    const rendered = renderValues(values, 'yaml');
    expect(rendered).toContain('\n"<<": merge?\n"yes": "no"\n"n": 1\nt: true\nz: null\ns: "017"\nd: "2001-12-14"\n');
    expect(ownJson(yamlParse(rendered))).toBe(ownJson(values));
    expect(ownJson(yamlParse(rendered, { version: '1.1' }))).toBe(ownJson(values));
  });

  it('escapes what YAML allows in no plain scalar: a byte order mark, C1 controls, U+2028, U+FFFF', () => {
    const values: JsonObject = { '\ufeff': ['\ufeffx'], a: 'nel\u0085 ls\u2028 del\u007f', b: '\uffff' };
    const rendered = renderValues(values, 'yaml');
    expect(rendered).toBe('"\\uFEFF":\n  - "\\uFEFFx"\na: "nel\\u0085 ls\\u2028 del\\u007F"\nb: "\\uFFFF"\n');
    expect(ownJson(yamlParse(rendered))).toBe(ownJson(values));
    expect(ownJson(yamlParse(rendered, { version: '1.1' }))).toBe(ownJson(values));
  });

  it('writes no anchors or aliases for a shared sub-object, and does not fold long lines', () => {
    const shared = { host: 'db', port: 5432 };
    const long = `${'word '.repeat(40)}end`;
    const rendered = renderValues({ a: shared, b: shared, long }, 'yaml');
    expect(rendered).not.toMatch(/[&*]/);
    expect(rendered).toContain(`long: ${long}\n`);
    expect(yamlParse(rendered)).toEqual({ a: shared, b: shared, long });
  });

  it('parses back to exactly the values: odd keys and any JSON', () => {
    fc.assert(
      fc.property(oddJsonObject, (values) => {
        expect(ownJson(yamlParse(renderValues(values, 'yaml')))).toBe(ownJson(values));
      }),
      { numRuns: 300 },
    );
  });

  it('parses back to exactly the values: awkward strings as keys and values, in YAML 1.2 and 1.1', () => {
    fc.assert(
      fc.property(yamlValues, (values) => {
        const rendered = renderValues(values, 'yaml');
        expect(ownJson(yamlParse(rendered))).toBe(ownJson(values));
        expect(ownJson(yamlParse(rendered, { version: '1.1' }))).toBe(ownJson(values));
      }),
      { numRuns: 500 },
    );
  });

  it('keeps the blanks of a string made of blanks and line breaks (a block scalar would lose them)', () => {
    for (const text of [' \n', '  \n \n', '\t\n', ' \t\n\n', '\n', '\n\n ']) {
      for (const values of [{ a: text }, { a: [text, 'x'] }, { '': [text] }, { a: { b: text } }]) {
        const rendered = renderValues(values, 'yaml');
        expect(ownJson(yamlParse(rendered)), JSON.stringify(values)).toBe(ownJson(values));
        expect(ownJson(yamlParse(rendered, { version: '1.1' })), JSON.stringify(values)).toBe(ownJson(values));
      }
    }
  });
});

describe('env', () => {
  it('writes sorted KEY=value lines: bare, single-quoted or double-quoted with escapes', () => {
    const values: JsonObject = {
      Z_LAST: 'plain-value_1.2/3:4@5+6,7',
      A_EMPTY: '',
      B_NULL: null,
      C_NUMBER: 1.5,
      D_BOOL: false,
      E_OBJECT: { a: [1, 'x y'] },
      F_SPACE: 'two words',
      G_DOLLAR: '$HOME and `date`',
      H_QUOTE: "it's",
      I_BOTH: `it's "$HOME" \`x\` \\`,
      J_LINES: 'a\nb',
      _under: 'x',
    };
    expect(renderValues(values, 'env')).toBe(
      [
        'A_EMPTY=""',
        'B_NULL=""',
        'C_NUMBER=1.5',
        'D_BOOL=false',
        `E_OBJECT='{"a":[1,"x y"]}'`,
        "F_SPACE='two words'",
        "G_DOLLAR='$HOME and `date`'",
        `H_QUOTE="it's"`,
        'I_BOTH="it\'s \\"\\$HOME\\" \\`x\\` \\\\"',
        "J_LINES='a\nb'",
        'Z_LAST=plain-value_1.2/3:4@5+6,7',
        '_under=x',
        '',
      ].join('\n'),
    );
  });

  it('reads back exactly in sh and in the dotenv package: awkward values', () => {
    const values: JsonObject = Object.fromEntries(AWKWARD.map((value, i) => [`K${i}`, value]));
    const rendered = renderValues(values, 'env');
    const keys = Object.keys(values);
    expect(shRead(rendered, keys)).toEqual(values);
    const dotenv = dotenvParse(rendered);
    for (const key of keys) {
      const value = values[key] as string;
      if (dotenvExact(value)) expect(dotenv[key], `${key}: ${JSON.stringify(value)}`).toBe(value);
    }
    // The awkward values the dotenv package reads as sh does include the shell's own syntax.
    for (const value of [
      '$HOME',
      '${HOME}',
      '$(id)',
      '`date`',
      'back\\slash',
      'say "hi"',
      "it's",
      'line\nbreak',
      '#c',
    ]) {
      expect(dotenvParse(renderValues({ K: value }, 'env')).K).toBe(value);
    }
  });

  it('reads back exactly in sh: any keys and values (property)', () => {
    const key = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/).map((name) => `CFGD_T_${name}`);
    const value = fc.oneof(
      text.filter((t) => !t.includes('\0')),
      fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>,
    );
    fc.assert(
      fc.property(fc.dictionary(key, value, { minKeys: 1, maxKeys: 8 }), (values) => {
        const rendered = renderValues(values, 'env');
        const expected = envExpected(values);
        expect(shRead(rendered, Object.keys(values))).toEqual(expected);
        // The dotenv package: exactly, whenever every value is one it reads as sh does.
        if (Object.values(expected).every(dotenvExact)) expect(dotenvParse(rendered)).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a key that is not a shell variable name, naming it', () => {
    for (const key of ['my-key', '1abc', '', 'a.b', 'a b', 'é', '__proto__-x']) {
      const error = run(() => renderValues({ GOOD: 1, [key]: 'x' }, 'env'));
      expect(error.reason, key).toBe('RENDER_UNREPRESENTABLE');
      expect(error.kind).toBe('failed-precondition');
      expect(error.metadata).toEqual({ format: 'env', key });
      expect(error.message).toContain(JSON.stringify(key));
    }
  });

  it('refuses a value holding a NUL character, which no environment variable can hold', () => {
    const error = run(() => renderValues({ A: 'x\u0000y' }, 'env'));
    expect(error).toMatchObject({ reason: 'RENDER_UNREPRESENTABLE', metadata: { format: 'env', key: 'A' } });
  });
});

describe('properties', () => {
  it('flattens objects by key and arrays by index, sorted, escaping as java.util.Properties reads', () => {
    const values: JsonObject = {
      db: { host: 'db.local', port: 5432, tls: true, password: null },
      hosts: ['a', 'b'],
      'key with=odd:chars#!': ' leading space, trailing = : # ! kept ',
      path: 'C:\\dir\\',
      lines: 'one\ntwo\r\tthree\f',
      latin: 'é',
      astral: '😀',
      ctrl: '\u0001\u007f',
      empty: {},
      none: [],
    };
    expect(renderValues(values, 'properties')).toBe(
      [
        'astral=\\uD83D\\uDE00',
        'ctrl=\\u0001\\u007F',
        'db.host=db.local',
        'db.password=',
        'db.port=5432',
        'db.tls=true',
        'hosts.0=a',
        'hosts.1=b',
        'key\\ with\\=odd\\:chars\\#\\!=\\ leading space, trailing = : # ! kept ',
        'latin=\\u00E9',
        'lines=one\\ntwo\\r\\tthree\\f',
        'path=C:\\\\dir\\\\',
        '',
      ].join('\n'),
    );
  });

  it('is ASCII, so it reads the same as ISO-8859-1 and as UTF-8', () => {
    fc.assert(
      fc.property(oddJsonObject, (values) => {
        if (propertiesExpected(values) === undefined) return;
        expect(renderValues(values, 'properties')).toMatch(/^[\x20-\x7e\n]*$/);
      }),
      { numRuns: 200 },
    );
  });

  it('reads back exactly, odd keys and awkward text included, or refuses two keys of one flattened name', () => {
    const awkwardObject = fc.dictionary(
      text,
      fc.oneof(text, fc.dictionary(text, text, { maxKeys: 3 }), fc.array(text, { maxLength: 3 })),
      { maxKeys: 8 },
    );
    fc.assert(
      fc.property(fc.oneof(oddJsonObject, awkwardObject), (values) => {
        const expected = propertiesExpected(values);
        if (expected === undefined) {
          expect(run(() => renderValues(values, 'properties')).reason).toBe('RENDER_UNREPRESENTABLE');
          return;
        }
        expect(propertiesRead(renderValues(values, 'properties'))).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses keys that flatten to one name, naming it', () => {
    for (const values of [
      { 'a.b': 1, a: { b: 2 } },
      { a: { b: 2 }, 'a.b': 1 },
      { 'h.0': 'x', h: ['y'] },
    ] as JsonObject[]) {
      const error = run(() => renderValues(values, 'properties'));
      expect(error.reason).toBe('RENDER_UNREPRESENTABLE');
      expect(error.metadata.format).toBe('properties');
      expect(['a.b', 'h.0']).toContain(error.metadata.key);
      expect(error.message).toContain(JSON.stringify(error.metadata.key));
    }
  });
});

describe('formats', () => {
  it('refuses a format it does not know with FORMAT_INVALID', () => {
    const error = run(() => renderValues({ a: 1 }, 'xml' as RenderFormat));
    expect(error).toMatchObject({ kind: 'invalid-argument', reason: 'FORMAT_INVALID', metadata: { field: 'format' } });
  });

  it('render empty values as an empty document of each format', () => {
    expect(renderValues({}, 'json')).toBe('{}\n');
    expect(yamlParse(renderValues({}, 'yaml'))).toEqual({});
    expect(renderValues({}, 'env')).toBe('');
    expect(renderValues({}, 'properties')).toBe('');
  });
});
