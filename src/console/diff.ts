// The difference of two JSON values, path by path, for comparing two versions of a config.
import type { Json, JsonObject } from './types.js';

/** One changed path: added (`+`), removed (`-`) or changed (`~`). */
export interface DiffLine {
  readonly op: '+' | '-' | '~';
  /** The path, e.g. `limits.rps`, `hosts[2]`, `["a.b"].c`. */
  readonly path: string;
  /** The value before (`-`, `~`). */
  readonly from?: Json;
  /** The value after (`+`, `~`). */
  readonly to?: Json;
}

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** JSON equality: key order does not matter, numbers compare by value. */
export function jsonEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && jsonEqual(a[key], b[key]))
    );
  }
  return false;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** A path's next segment: `.key`, `["odd key"]` or `[index]`. */
function child(path: string, segment: string | number): string {
  if (typeof segment === 'number') return `${path}[${segment}]`;
  if (IDENTIFIER.test(segment)) return path === '' ? segment : `${path}.${segment}`;
  return `${path}[${JSON.stringify(segment)}]`;
}

function walk(a: Json, b: Json, path: string, lines: DiffLine[]): void {
  if (jsonEqual(a, b)) return;
  if (isObject(a) && isObject(b)) {
    for (const key of Object.keys(a)) {
      const next = child(path, key);
      if (!Object.hasOwn(b, key)) lines.push({ op: '-', path: next, from: a[key] ?? null });
      else walk(a[key] ?? null, b[key] ?? null, next, lines);
    }
    for (const key of Object.keys(b)) {
      if (!Object.hasOwn(a, key)) lines.push({ op: '+', path: child(path, key), to: b[key] ?? null });
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const shared = Math.min(a.length, b.length);
    for (let i = 0; i < shared; i++) walk(a[i] ?? null, b[i] ?? null, child(path, i), lines);
    for (let i = shared; i < a.length; i++) lines.push({ op: '-', path: child(path, i), from: a[i] ?? null });
    for (let i = shared; i < b.length; i++) lines.push({ op: '+', path: child(path, i), to: b[i] ?? null });
    return;
  }
  lines.push({ op: '~', path: path === '' ? '(values)' : path, from: a, to: b });
}

/**
 * The changes from `a` to `b`: objects are compared key by key and arrays index by index, down
 * to the paths whose values differ; a path whose value changes kind (object to number …) is one
 * `~` line. Removed and changed keys come in `a`'s key order, then added keys in `b`'s.
 */
export function diffJson(a: Json, b: Json): DiffLine[] {
  const lines: DiffLine[] = [];
  walk(a, b, '', lines);
  return lines;
}

/** A value in one line: compact JSON. */
export function showValue(value: Json | undefined): string {
  return value === undefined ? '' : JSON.stringify(value);
}

/** A diff line as text: `+ path: value`, `- path: value`, `~ path: old → new`. */
export function formatLine(line: DiffLine): string {
  switch (line.op) {
    case '+':
      return `+ ${line.path}: ${showValue(line.to)}`;
    case '-':
      return `- ${line.path}: ${showValue(line.from)}`;
    case '~':
      return `~ ${line.path}: ${showValue(line.from)} → ${showValue(line.to)}`;
  }
}
