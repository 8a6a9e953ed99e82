/**
 * Config values written as files: JSON, YAML, dotenv and Java properties, for
 * callers that want a file rather than a message (RenderConfig). Pure: text
 * in, text out, no I/O; a value a format cannot hold is refused with a
 * `CfgdError` naming the key, never written in a form that reads back as
 * something else.
 */
import { Document, visit } from 'yaml';
import { CfgdError, invalidField, type JsonObject, type JsonValue } from '../domain/index.js';

/** The formats `renderValues` writes. */
export const RENDER_FORMATS = ['json', 'yaml', 'env', 'properties'] as const;
export type RenderFormat = (typeof RENDER_FORMATS)[number];

/**
 * The media type of each format's file. Properties files are ISO-8859-1 by
 * definition (java.util.Properties.load(InputStream)); the escaping keeps them
 * ASCII, so they read the same as UTF-8.
 */
export const RENDER_MEDIA_TYPES: Readonly<Record<RenderFormat, string>> = {
  json: 'application/json',
  yaml: 'application/yaml',
  env: 'text/plain; charset=utf-8',
  properties: 'text/x-java-properties; charset=ISO-8859-1',
};

/**
 * `values` as a file in `format`; every line ends with a newline. Throws
 * FORMAT_INVALID for a format it does not know, and RENDER_UNREPRESENTABLE
 * (naming the key in its message and `metadata.key`) for values the format
 * cannot hold. The rules of each format are those of `RenderFormat` in
 * proto/cfgd/v1/config_service.proto.
 */
export function renderValues(values: JsonObject, format: RenderFormat): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(values, null, 2)}\n`;
    case 'yaml':
      return renderYaml(values);
    case 'env':
      return renderEnv(values);
    case 'properties':
      return renderProperties(values);
    default: {
      // Unreachable for callers the compiler checked; a string from elsewhere still gets a clear error.
      const given: unknown = format satisfies never;
      throw invalidField(
        'format',
        'FORMAT_INVALID',
        `${clip(String(given))} is not a format; use one of ${RENDER_FORMATS.join(', ')}`,
      );
    }
  }
}

/**
 * YAML 1.2 that parses back to exactly the values. `compat: 'yaml-1.1'` also
 * quotes the strings a YAML 1.1 reader (PyYAML, libyaml) would take for
 * another type (`yes`, `on`, `017`, `1:20`, `2001-12-14`, a `<<` key); no
 * anchors or aliases (a sub-object the values share is written out each time);
 * no line folding, so a long value stays on its line.
 */
function renderYaml(values: JsonObject): string {
  const doc = new Document(values, { aliasDuplicateObjects: false, compat: 'yaml-1.1' });
  // The library writes these characters raw, also in plain scalars, where YAML allows none of them (and a
  // reader drops a U+FEFF that starts the stream as a byte order mark): every string holding one is double
  // quoted, and in double quotes, the only place they can then stand, each is written as an escape.
  // A multi-line string of nothing but blanks would become a block scalar without an indentation
  // indicator, whose first line's blanks a reader takes for indentation (" \n" read back as "\n"): quoted too.
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string') return;
      if (YAML_UNPRINTABLE.test(node.value) || YAML_BLANK_LINES.test(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  return doc.toString({ lineWidth: 0 }).replace(YAML_UNPRINTABLES, (char) => `\\u${hex4(char.charCodeAt(0))}`);
}

/**
 * What YAML's `nb-char` excludes but the library does not escape: C1 controls and DEL, U+FEFF, U+FFFE,
 * U+FFFF, and U+2028 and U+2029 (line breaks to a YAML 1.1 reader).
 */
const YAML_UNPRINTABLE = /[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]/;
const YAML_UNPRINTABLES = new RegExp(YAML_UNPRINTABLE.source, 'g');
/** A string of blanks and line breaks, with at least one line break. */
const YAML_BLANK_LINES = /^[ \t]*\n[ \t\n]*$/;

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A value made only of these needs no quotes in sh or in dotenv. */
const ENV_BARE = /^[A-Za-z0-9_./:@+,-]+$/;

/**
 * dotenv: `KEY=value` lines sorted by key, written for POSIX sh (`set -a; .
 * ./file`), which reads back every value exactly. Single quotes where the value
 * has none, because both sh and the dotenv package take them literally (the
 * dotenv package does not undo backslash escapes in double quotes, so `"\$HOME"`
 * would read as `\$HOME` there); double quotes with sh's escapes otherwise.
 */
function renderEnv(values: JsonObject): string {
  let text = '';
  for (const key of Object.keys(values).sort(byCodeUnits)) {
    if (!ENV_KEY.test(key)) {
      throw unrepresentable('env', key, `the key ${clip(key)} is not a shell variable name ([A-Za-z_][A-Za-z0-9_]*)`);
    }
    const value = scalarText(values[key]!);
    if (value.includes('\0')) {
      throw unrepresentable(
        'env',
        key,
        `the value of ${clip(key)} holds a NUL character, which no environment variable can hold`,
      );
    }
    text += `${key}=${envQuoted(value)}\n`;
  }
  return text;
}

function envQuoted(value: string): string {
  if (value === '') return '""';
  if (ENV_BARE.test(value)) return value;
  if (!value.includes("'")) return `'${value}'`;
  // Inside double quotes sh gives \ " $ ` their meaning; a backslash before each takes it away.
  return `"${value.replace(/[\\"$`]/g, '\\$&')}"`;
}

/**
 * Java properties: the values flattened to `a.b.0 = leaf` (objects by key,
 * arrays by index), sorted by name, escaped as java.util.Properties.store does
 * but for `= : # !` in values, which the reader takes literally there.
 */
function renderProperties(values: JsonObject): string {
  // Flattened name → the value's text and the path it came from (for the error when two collide).
  const leaves = new Map<string, { text: string; path: readonly string[] }>();
  const visit = (path: readonly string[], value: JsonValue): void => {
    if (Array.isArray(value)) {
      value.forEach((item, index) => visit([...path, String(index)], item));
    } else if (value !== null && typeof value === 'object') {
      for (const key of Object.keys(value)) visit([...path, key], value[key]!);
    } else {
      const name = path.join('.');
      const earlier = leaves.get(name);
      if (earlier !== undefined) {
        throw unrepresentable(
          'properties',
          name,
          `the keys ${pathText(earlier.path)} and ${pathText(path)} both flatten to the name ${clip(name)}`,
        );
      }
      leaves.set(name, { text: scalarText(value), path });
    }
  };
  for (const key of Object.keys(values)) visit([key], values[key]!);
  let text = '';
  for (const name of [...leaves.keys()].sort(byCodeUnits)) {
    text += `${propertiesEscaped(name, true)}=${propertiesEscaped(leaves.get(name)!.text, false)}\n`;
  }
  return text;
}

const NAMED_ESCAPES: Readonly<Record<string, string>> = { '\t': '\\t', '\n': '\\n', '\r': '\\r', '\f': '\\f' };

/**
 * A key or value as java.util.Properties.load reads it back: `\` doubled;
 * tab, line feed, carriage return and form feed by name; anything else
 * outside printable ASCII as `\uXXXX` (UTF-16 code units, so an astral
 * character becomes its surrogate pair); in a key also space and `= : # !`
 * (which would end it or start a comment), in a value a leading space (which
 * the reader would skip).
 */
function propertiesEscaped(text: string, key: boolean): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    const code = text.charCodeAt(i);
    const named = NAMED_ESCAPES[char];
    if (named !== undefined) out += named;
    else if (char === '\\') out += '\\\\';
    else if (char === ' ') out += key || i === 0 ? '\\ ' : ' ';
    else if (key && (char === '=' || char === ':' || char === '#' || char === '!')) out += `\\${char}`;
    else if (code < 0x20 || code > 0x7e) out += `\\u${hex4(code)}`;
    else out += char;
  }
  return out;
}

/** A value as env and properties files hold it: strings as they are, null empty, the rest as compact JSON. */
function scalarText(value: JsonValue): string {
  if (typeof value === 'string') return value;
  if (value === null) return '';
  return JSON.stringify(value);
}

function hex4(code: number): string {
  return code.toString(16).toUpperCase().padStart(4, '0');
}

/** Code-unit order: the same on every node and in every locale. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function pathText(path: readonly string[]): string {
  return path.map((part) => clip(part)).join(' → ');
}

/** A key quoted for a message, cut short: a 10 kB key needs no echo in full. */
function clip(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}

function unrepresentable(format: RenderFormat, key: string, why: string): CfgdError {
  return new CfgdError(
    'failed-precondition',
    'RENDER_UNREPRESENTABLE',
    `the values cannot be written as ${format}: ${why}`,
    { metadata: { format, key: key.length > 200 ? `${key.slice(0, 200)}…` : key } },
  );
}
