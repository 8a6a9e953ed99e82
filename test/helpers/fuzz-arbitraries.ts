import fc from 'fast-check';

/**
 * fast-check generators of hostile input for the fuzz suite: names, keys,
 * JSON bodies and query strings a careless or malicious client might send.
 * Each generator states whether what it makes must be refused, so the suite
 * can aim only refused requests at the configs it checks stay unchanged.
 */

/** Strings that have broken servers before: prototype names, path tricks, encodings, limits. */
const NOTORIOUS = [
  '',
  '.',
  '..',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'a'.repeat(128),
  'a'.repeat(129),
  'k'.repeat(5000),
  '%',
  '%zz',
  '%00',
  '%2F',
  '%2e%2e',
  '%ff',
  '%c0%af',
  ' ',
  '\t',
  '\u0000',
  '\u2028',
  'ü',
  '☃',
  '😀',
  '\ud800',
  'a/b',
  'a?b',
  'a#b',
  'a:watch',
  '{user_id}',
  'null',
  '-',
  '_',
  '$where',
  '../../etc/passwd',
];

/** Any text, weighted towards the notorious. */
export const hostileText: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NOTORIOUS) },
  { weight: 2, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 16 }) },
  {
    weight: 2,
    arbitrary: fc.string({ unit: fc.constantFrom(...'aZ09._-%/:?#[]{}@!$&\'()*+,;= \\"<>^`|~'), maxLength: 20 }),
  },
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9._-]{1,20}$/) },
);

/** A name that passes validation (1–128 of `A–Z a–z 0–9 . _ -`) for the fuzz's own configs. */
export const validName: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', '.', '..', '-', 'a'.repeat(128)),
  fc.stringMatching(/^[A-Za-z0-9._-]{1,30}$/),
);

/** Object keys for JSON bodies; every JSON key is a legal config key. */
export const oddKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    '',
    'toString',
    'valueOf',
    '__defineGetter__',
    'k'.repeat(3000),
    '$ref',
    '@type',
  ),
  fc.string({ maxLength: 12 }),
);

/** JSON text of an object with odd keys, written by hand so `__proto__` appears as a key. */
export const oddObjectText: fc.Arbitrary<string> = fc
  .array(fc.tuple(oddKey, fc.jsonValue({ maxDepth: 3 })), { maxLength: 6 })
  .map((entries) => `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`).join(',')}}`);

/** A body for a write route: its bytes, headers, and whether cfgd must refuse it. */
export interface BodyCase {
  readonly kind: string;
  readonly body: Buffer;
  /** Content-Type; undefined sends none. */
  readonly contentType: string | undefined;
  /** Sent with `Transfer-Encoding: chunked` in these piece sizes instead of a Content-Length. */
  readonly chunks: readonly number[] | undefined;
  /** No valid request carries this body (on its own it is refused by any write route). */
  readonly refused: boolean;
}

const JSON_TYPE = 'application/json';

/** `contentType` is required: undefined means "send none", so it must never fall back to a default. */
function textCase(
  kind: string,
  text: string,
  refused: boolean,
  contentType: string | undefined,
): Omit<BodyCase, 'chunks'> {
  return { kind, body: Buffer.from(text), contentType, refused };
}

const malformedJson = fc
  .tuple(
    fc.json({ maxDepth: 3 }),
    fc.nat(),
    fc.constantFrom('{', '}', '[', ']', ',', ':', '"', '\\', 'x', 'NaN', "'", '\u0000', '//'),
    fc.boolean(),
  )
  .map(([text, at, junk, cut]) => {
    const i = at % (text.length + 1);
    return cut ? text.slice(0, Math.max(1, i)) + (i === 0 ? junk : '') : text.slice(0, i) + junk + text.slice(i);
  })
  .filter((text) => {
    try {
      JSON.parse(text);
      return false;
    } catch {
      return true;
    }
  })
  .map((text) => textCase('malformed JSON', text, true, JSON_TYPE));

const nonObject = fc
  .oneof(
    fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 4 }),
    fc.string(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
  )
  .map((value) => textCase('not an object', JSON.stringify(value), true, JSON_TYPE));

/** Nested past the limit (32) as objects, arrays or both; deep enough to test recursion too. */
const deep = fc
  .tuple(fc.integer({ min: 34, max: 20_000 }), fc.constantFrom('object', 'array', 'mixed'))
  .map(([depth, shape]) => {
    const opens: string[] = [];
    const closes: string[] = [];
    for (let i = 0; i < depth; i++) {
      const object = i === 0 || shape === 'object' || (shape === 'mixed' && i % 2 === 0);
      opens.push(object ? '{"k":' : '[');
      closes.push(object ? '}' : ']');
    }
    return textCase(`nested ${depth} (${shape})`, `${opens.join('')}1${closes.reverse().join('')}`, true, JSON_TYPE);
  });

const badUtf8 = fc
  .tuple(
    fc.constantFrom(
      [0xff],
      [0xfe, 0xff],
      [0xc0, 0x80],
      [0xed, 0xa0, 0x80],
      [0xf8, 0x88, 0x80, 0x80, 0x80],
      [0xe2, 0x82],
      [0x80],
    ),
    fc.string({ maxLength: 8 }),
  )
  .map(([bytes, text]) => ({
    kind: 'bad UTF-8',
    body: Buffer.concat([Buffer.from(`{"k": "${text.replace(/["\\]/g, '')}`), Buffer.from(bytes), Buffer.from('"}')]),
    contentType: JSON_TYPE,
    refused: true,
  }));

const wrongType = fc
  .tuple(
    oddObjectText,
    fc.constantFrom(
      undefined,
      '',
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=latin1',
      'application/xml',
      ';;;',
      'application/json;charset="utf-16"',
      'json',
    ),
  )
  .map(([text, type]) => textCase(`Content-Type ${String(type)}`, text === '{}' ? '{"a":1}' : text, true, type));

const oddKeys = fc
  .tuple(
    oddObjectText,
    fc.constantFrom(JSON_TYPE, 'application/json; charset=utf-8', 'application/merge-patch+json', 'APPLICATION/JSON'),
  )
  .map(([text, type]) => textCase('odd keys', text, false, type));

const jsonValues = fc
  .jsonValue({ maxDepth: 5 })
  .map((value) => textCase('any JSON', JSON.stringify(value), false, JSON_TYPE));

const blank = fc.constantFrom('', ' ', '\r\n', '\ufeff').map((text) => textCase('blank', text, true, JSON_TYPE));

/** Bodies that are over `maxBodyBytes`. */
function huge(maxBodyBytes: number): fc.Arbitrary<Omit<BodyCase, 'chunks'>> {
  return fc
    .integer({ min: maxBodyBytes + 1, max: maxBodyBytes * 3 })
    .map((size) => textCase(`huge ${size}`, `{"a":"${'x'.repeat(size)}"}`, true, JSON_TYPE));
}

/** A body for a write route; `refusedOnly` keeps to those no write route accepts. */
export function bodyCase(maxBodyBytes: number, refusedOnly: boolean): fc.Arbitrary<BodyCase> {
  const refused = [malformedJson, nonObject, deep, badUtf8, wrongType, huge(maxBodyBytes), blank];
  const any = refusedOnly ? refused : [...refused, oddKeys, oddKeys, jsonValues];
  return fc
    .tuple(
      fc.oneof(...any),
      fc.oneof(
        { weight: 3, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.array(fc.integer({ min: 1, max: 4096 }), { minLength: 1, maxLength: 6 }) },
      ),
    )
    .map(([body, chunks]) => printable({ ...body, chunks }));
}

/** A body case that fast-check prints in a line (kind, size, start) rather than byte by byte. */
function printable(body: BodyCase): BodyCase {
  const start = body.body.subarray(0, 120).toString('latin1');
  const text = `${body.kind}: ${body.body.length} bytes ${JSON.stringify(start)}${body.body.length > 120 ? '…' : ''}, Content-Type ${String(body.contentType)}${body.chunks ? `, chunked ${body.chunks.join('/')}` : ''}`;
  return Object.defineProperty(body, fc.toStringMethod, { value: () => text, enumerable: false });
}

/** Query strings: known field names with odd values, map syntax gone wrong, junk. */
export const queryString: fc.Arbitrary<string> = fc
  .tuple(
    fc.array(
      fc.tuple(
        fc.oneof(
          fc.constantFrom(
            'start_version',
            'version',
            'page_size',
            'page_token',
            'expected_version',
            'known_versions',
            'user_id',
            'config_name',
            'values',
            'type',
            'known_versions[a]',
            'known_versions[__proto__]',
            'known_versions[constructor]',
            'known_versions[]',
            'known_versions[a][b]',
            'known_versions.a',
            '[x]',
            '',
            'a[b][c]',
            'p'.repeat(3000),
          ),
          fc.string({ maxLength: 10 }).map((key) => `known_versions[${key}]`),
          hostileText,
        ),
        fc.oneof(
          fc.constantFrom(
            '',
            '0',
            '1',
            '-1',
            '2.5',
            '1e3',
            '9223372036854775808',
            '-9223372036854775809',
            'true',
            'NaN',
            '0x10',
            ' 1',
            '１',
          ),
          hostileText,
        ),
        fc.boolean(),
      ),
      { maxLength: 5 },
    ),
    fc.constantFrom('&', '&', '&&', ';'),
  )
  .map(([params, separator]) =>
    params
      .map(([name, value, encode]) =>
        encode ? `${encodeComponent(name)}=${encodeComponent(value)}` : `${looseEncode(name)}=${looseEncode(value)}`,
      )
      .join(separator),
  );

/**
 * Percent-encodes only what would break the request line (whitespace, controls,
 * non-ASCII), leaving `%zz`, `/`, `?`, `#`, `[` … as the client wrote them.
 */
export function looseEncode(text: string): string {
  return [...text].map((char) => (/^[\x21-\x7e]$/.test(char) ? char : encodeComponent(char))).join('');
}

/** encodeURIComponent, with a lone surrogate (on which it throws) sent as U+FFFD. */
export function encodeComponent(text: string): string {
  return encodeURIComponent(
    text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'),
  );
}
