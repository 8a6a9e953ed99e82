// Where in a JSON text a value is: for pointing the server's field violations at the editor's text.

/** A range of the text: [from, to). */
export interface TextRange {
  readonly from: number;
  readonly to: number;
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);

function skipSpace(text: string, at: number): number {
  let i = at;
  while (i < text.length && WHITESPACE.has(text[i] ?? '')) i++;
  return i;
}

/** The end of the string literal that starts at `at` (its opening quote). */
function endOfString(text: string, at: number): number {
  let i = at + 1;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\') i += 2;
    else if (c === '"') return i + 1;
    else i++;
  }
  return text.length;
}

/** The end of the value that starts at `at`. */
function endOfValue(text: string, at: number): number {
  const c = text[at];
  if (c === '"') return endOfString(text, at);
  if (c === '{' || c === '[') {
    let depth = 0;
    let i = at;
    while (i < text.length) {
      const d = text[i];
      if (d === '"') {
        i = endOfString(text, i);
        continue;
      }
      if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') {
        depth--;
        if (depth === 0) return i + 1;
      }
      i++;
    }
    return text.length;
  }
  let i = at;
  while (i < text.length && /[\w.+-]/.test(text[i] ?? '')) i++;
  return Math.max(i, at + 1);
}

/** The value of `segment` in the container at `at`: its start, or undefined if it has none. */
function childStart(text: string, at: number, segment: string): number | undefined {
  const open = text[at];
  let i = skipSpace(text, at + 1);
  let index = 0;
  while (i < text.length && text[i] !== '}' && text[i] !== ']') {
    let match: boolean;
    if (open === '{') {
      const keyEnd = endOfString(text, i);
      let key: unknown;
      try {
        key = JSON.parse(text.slice(i, keyEnd));
      } catch {
        return undefined;
      }
      match = key === segment;
      i = skipSpace(text, keyEnd);
      if (text[i] !== ':') return undefined;
      i = skipSpace(text, i + 1);
    } else {
      match = String(index) === segment;
    }
    if (match) return i;
    i = skipSpace(text, endOfValue(text, i));
    if (text[i] === ',') i = skipSpace(text, i + 1);
    index++;
  }
  return undefined;
}

/**
 * The range of the value at `path` (object keys and array indices) in a valid JSON text. When a
 * step of the path is missing (a required property that is absent), the range is the opening
 * bracket of the deepest container found. Undefined when the text is not a container.
 */
export function locate(text: string, path: readonly string[]): TextRange | undefined {
  let at = skipSpace(text, 0);
  for (const segment of path) {
    if (text[at] !== '{' && text[at] !== '[') return at < text.length ? { from: at, to: at + 1 } : undefined;
    const child = childStart(text, at, segment);
    if (child === undefined) return { from: at, to: at + 1 };
    at = child;
  }
  return at < text.length ? { from: at, to: endOfValue(text, at) } : undefined;
}

/**
 * The path in the values of a field violation's `field` (`values/limits/rps`: a JSON pointer
 * after `values`), or undefined for a field outside the values.
 */
export function valuesPath(field: string): string[] | undefined {
  if (field === 'values') return [];
  if (!field.startsWith('values/')) return undefined;
  return field
    .slice('values/'.length)
    .split('/')
    .map((segment) => segment.replaceAll('~1', '/').replaceAll('~0', '~'));
}
