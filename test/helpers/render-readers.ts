/**
 * Readers of rendered config files that are not cfgd's (POSIX sh, the dotenv
 * package, dot-properties), and what each should read back from given values,
 * written independently of src/render.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLines } from 'dot-properties';
import type { JsonObject, JsonValue } from '../../src/domain/index.js';

/** A value as env and properties files hold it: strings as they are, null empty, the rest as compact JSON. */
export function flatText(value: JsonValue): string {
  return typeof value === 'string' ? value : value === null ? '' : JSON.stringify(value);
}

/** What an env file of `values` should set: each top-level key to its text. */
export function envExpected(values: JsonObject): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, flatText(value)]));
}

/**
 * Sources an env file with POSIX sh (`. ./file`, in an empty environment) and reads each of `keys` back
 * exactly (printf, NUL-separated: no trailing newline is lost).
 */
export function shRead(rendered: string | Buffer, keys: readonly string[]): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'cfgd-env-'));
  try {
    writeFileSync(join(dir, 'values.env'), rendered);
    const script = `. ./values.env; printf '%s\\000' ${keys.map((key) => `"$${key}"`).join(' ')}`;
    const output = execFileSync('sh', ['-c', script], { cwd: dir, env: {} }).toString('utf8');
    const parts = output.split('\0').slice(0, -1);
    return Object.fromEntries(keys.map((key, i) => [key, parts[i]!]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The values that the dotenv package reads back as sh does (see RenderFormat ENV in the proto):
 * no carriage return, no backslash at the end, and no single quote together with `\ " $` or a backquote.
 */
export function dotenvExact(value: string): boolean {
  return !value.includes('\r') && !value.endsWith('\\') && !(value.includes("'") && /[\\"$`]/.test(value));
}

/**
 * The values flattened as a properties file holds them (objects by key, arrays by index, joined with
 * `.`), sorted by name in code-unit order; undefined when two leaves flatten to one name.
 */
export function propertiesExpected(values: JsonObject): [string, string][] | undefined {
  const out = new Map<string, string>();
  let clash = false;
  const walk = (name: string, value: JsonValue): void => {
    if (Array.isArray(value)) value.forEach((item, i) => walk(`${name}.${i}`, item));
    else if (value !== null && typeof value === 'object') {
      for (const key of Object.getOwnPropertyNames(value)) walk(`${name}.${key}`, value[key]!);
    } else {
      if (out.has(name)) clash = true;
      out.set(name, flatText(value));
    }
  };
  for (const key of Object.getOwnPropertyNames(values)) walk(key, values[key]!);
  if (clash) return undefined;
  return [...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A properties file as dot-properties (a java.util.Properties reader) reads it: [key, value] pairs in order. */
export function propertiesRead(rendered: string): [string, string][] {
  return parseLines(rendered).filter((line): line is string[] => Array.isArray(line)) as [string, string][];
}
