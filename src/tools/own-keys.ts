/**
 * Part of `npm run generate`, run on ts-proto's output after `buf generate`.
 *
 * ts-proto (2.18.0, no option to change this) stores protobuf map entries and
 * google.protobuf.Struct fields by plain assignment, `target[key] = value`.
 * Those keys are data (config keys, config names in `known_versions`,
 * error metadata), and for the key `__proto__` plain assignment calls
 * Object.prototype's setter: the entry vanishes, or the object's prototype is
 * replaced. This tool rewrites each such assignment into a call of a helper
 * that defines an own data property, and appends the helper once per patched
 * file.
 *
 * It fails (exit 1, naming the file and line) rather than letting a ts-proto
 * upgrade undo the fix in silence: when a file has map or Struct code but none
 * of the expected assignments, when a required pattern is missing, and when any
 * assignment to a computed key is left over after rewriting. Running it twice
 * changes nothing the second time.
 *
 * Usage: tsx src/tools/own-keys.ts <directory>
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';

/** The name of the helper the rewritten assignments call. */
export const HELPER_NAME = 'setOwnProperty';

/** Appended to each patched file; its first line marks the file as patched. */
export const HELPER_SOURCE = [
  '',
  '// Added by `npm run generate` (src/tools/own-keys.ts), not by ts-proto: map keys and Struct field',
  '// names are data, and plain assignment of the key "__proto__" would call Object.prototype\'s setter,',
  '// dropping the entry or replacing the prototype. Any key the target already has, own or inherited',
  '// (`__proto__`, `toString` …), is defined as an own data property; plain assignment, several times',
  '// faster, is kept for keys found nowhere on the prototype chain, where it can only create one.',
  `function ${HELPER_NAME}(target: object, key: PropertyKey, value: unknown): void {`,
  '  if (key in target) {',
  '    globalThis.Object.defineProperty(target, key, { value, enumerable: true, configurable: true, writable: true });',
  '  } else {',
  '    (target as { [key: PropertyKey]: unknown })[key] = value;',
  '  }',
  '}',
  '',
].join('\n');

/** A loud failure: the generated code does not look as this tool expects. */
export class OwnKeysError extends Error {
  override readonly name = 'OwnKeysError';
}

interface Rule {
  readonly name: string;
  /** Matches one whole line; groups: indentation, target, key expression, value expression. */
  readonly pattern: RegExp;
  /** The same line once rewritten, so that a second run knows the rule was applied. */
  readonly rewritten: RegExp;
  /** Whether a file must contain this assignment (before or after rewriting). */
  readonly requiredIn: (source: string) => boolean;
}

const IDENT = String.raw`[A-Za-z_$][\w$]*`;

/** The assignments ts-proto 2.18 emits for map entries and Struct fields, one per line. */
const RULES: readonly Rule[] = [
  {
    // decode(): `message.fields[entry1.key] = entry1.value;` — what a server or client reads off the wire.
    name: 'map entry in decode()',
    pattern: new RegExp(String.raw`^(\s*)(message\.${IDENT})\[(entry\d+\.key)\] = (entry\d+\.value);$`),
    rewritten: new RegExp(String.raw`^\s*${HELPER_NAME}\(message\.${IDENT}, entry\d+\.key, entry\d+\.value\);$`, 'm'),
    requiredIn: hasMapEntries,
  },
  {
    // fromPartial()/create(): the reducer that copies a map.
    name: 'map entry in fromPartial()',
    pattern: new RegExp(String.raw`^(\s*)(acc)\[(key)\] = (.+);$`),
    rewritten: new RegExp(String.raw`^\s*${HELPER_NAME}\(acc, key, .+\);$`, 'm'),
    requiredIn: hasMapEntries,
  },
  {
    // toJSON(): `obj.fields[k] = v;`
    name: 'map entry in toJSON()',
    pattern: new RegExp(String.raw`^(\s*)(obj\.${IDENT})\[(k)\] = (.+);$`),
    rewritten: new RegExp(String.raw`^\s*${HELPER_NAME}\(obj\.${IDENT}, k, .+\);$`, 'm'),
    requiredIn: hasMapEntries,
  },
  {
    // Struct.wrap(): a plain object (config values) on its way to the wire.
    name: 'Struct.wrap()',
    pattern: /^(\s*)(struct\.fields)\[(key)\] = (object\[key\]);$/,
    rewritten: new RegExp(String.raw`^\s*${HELPER_NAME}\(struct\.fields, key, object\[key\]\);$`, 'm'),
    requiredIn: hasStructWrapper,
  },
  {
    // Struct.unwrap(): the wire's fields on their way to a plain object.
    name: 'Struct.unwrap()',
    pattern: /^(\s*)(object)\[(key)\] = (message\.fields\[key\]);$/,
    rewritten: new RegExp(String.raw`^\s*${HELPER_NAME}\(object, key, message\.fields\[key\]\);$`, 'm'),
    requiredIn: hasStructWrapper,
  },
];

/** ts-proto names the entry message of a map field `<Message>_<Field>Entry`. */
function hasMapEntries(source: string): boolean {
  return /\bexport const \w+_\w+Entry: MessageFns</.test(source);
}

function hasStructWrapper(source: string): boolean {
  return /\bStructWrapperFns\b/.test(source);
}

/** Signs of map or Struct code, looser than the rules, so that a change in ts-proto's output is noticed. */
function hasMapOrStructCode(source: string): boolean {
  return hasMapEntries(source) || hasStructWrapper(source) || /\bObject\.entries\(/.test(source);
}

/**
 * Any assignment to a computed, non-literal key (`x[k] = …`, `x[k] ??= …`),
 * outside comments. None may remain: it would be a map key that takes the
 * `__proto__` setter.
 */
const COMPUTED_ASSIGNMENT =
  /[\w$\])]\s*\[(?!\s*(?:\d+|"[^"]*"|'[^']*')\s*\])[^\]\n]+\]\s*(?:=(?![=>])|\?\?=|\|\|=|&&=)/;

function isComment(line: string): boolean {
  const trimmed = line.trimStart();
  return trimmed.startsWith('//') || trimmed.startsWith('*') || trimmed.startsWith('/*');
}

export interface OwnKeysResult {
  /** The file's new text (the same text when nothing needed rewriting). */
  readonly text: string;
  /** Assignments rewritten by this run, by rule name. */
  readonly rewrites: ReadonlyMap<string, number>;
}

/**
 * Rewrites the dynamic-key assignments of one generated file (`file` names it
 * in errors). Pure and idempotent: `ownKeys(f, ownKeys(f, t).text).text` equals
 * `ownKeys(f, t).text`. Throws OwnKeysError when the file has map or Struct code
 * that does not look as expected, or keeps an assignment to a computed key.
 */
export function ownKeys(file: string, text: string): OwnKeysResult {
  const helperDeclared = text.includes(`function ${HELPER_NAME}(`);
  const patchedBefore = text.includes(HELPER_SOURCE);
  if (helperDeclared && !patchedBefore) {
    throw new OwnKeysError(`${file}: already declares ${HELPER_NAME}(), but not as src/tools/own-keys.ts writes it`);
  }

  const rewrites = new Map<string, number>();
  const lines = text.split('\n').map((line) => {
    if (isComment(line)) return line;
    for (const rule of RULES) {
      const match = rule.pattern.exec(line);
      if (match === null) continue;
      const [, indent, target, key, value] = match;
      rewrites.set(rule.name, (rewrites.get(rule.name) ?? 0) + 1);
      return `${indent}${HELPER_NAME}(${target}, ${key}, ${value});`;
    }
    return line;
  });

  // The helper's own fallback assignment is the one computed-key assignment meant to stay: blank
  // it out (line for line, so that line numbers hold) before looking for leftovers.
  const blankHelper = '\n'.repeat(HELPER_SOURCE.split('\n').length - 1);
  const scanned = (patchedBefore ? lines.join('\n').replace(HELPER_SOURCE, blankHelper) : lines.join('\n')).split('\n');
  const leftovers = scanned.flatMap((line, i) =>
    !isComment(line) && COMPUTED_ASSIGNMENT.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : [],
  );
  if (leftovers.length > 0) {
    throw new OwnKeysError(
      [
        'own-keys: assignments to computed keys that this tool does not know how to make safe for "__proto__"',
        "(has ts-proto's output changed? extend the rules in src/tools/own-keys.ts):",
        ...leftovers.map((leftover) => `  ${leftover}`),
      ].join('\n'),
    );
  }

  const patched = lines.join('\n');
  const calls = patched.split(`${HELPER_NAME}(`).length - 1 - (patchedBefore ? 1 : 0);
  if (hasMapOrStructCode(text) && calls === 0) {
    throw new OwnKeysError(
      `own-keys: ${file} has map or Struct code but none of the assignments this tool rewrites ` +
        '(has ts-proto\'s output changed? check src/tools/own-keys.ts before trusting "__proto__" keys)',
    );
  }
  for (const rule of RULES) {
    if (!rule.requiredIn(text)) continue;
    const done = (rewrites.get(rule.name) ?? 0) > 0 || (patchedBefore && rule.rewritten.test(patched));
    if (!done) {
      throw new OwnKeysError(
        `own-keys: ${file} has map or Struct code but no "${rule.name}" assignment as ts-proto 2.18 writes it ` +
          '(has ts-proto\'s output changed? check src/tools/own-keys.ts before trusting "__proto__" keys)',
      );
    }
  }

  const withHelper = calls > 0 && !patchedBefore ? `${patched.replace(/\n*$/, '\n')}${HELPER_SOURCE}` : patched;
  return { text: withHelper, rewrites };
}

/** Every `.ts` file under `dir`, sorted, so that runs and messages are deterministic. */
function typeScriptFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

/** Patches every generated file under `dir` in place; returns how many assignments were rewritten. */
export function ownKeysInDirectory(dir: string): number {
  let total = 0;
  // Check every file before writing any, so that a failure leaves the directory as it was.
  const results = typeScriptFiles(dir).map((path) => {
    const before = readFileSync(path, 'utf8');
    const result = ownKeys(relative(process.cwd(), path), before);
    for (const count of result.rewrites.values()) total += count;
    return { path, before, after: result.text };
  });
  for (const { path, before, after } of results) if (after !== before) writeFileSync(path, after);
  return total;
}

function main(): void {
  const dir = process.argv[2];
  if (dir === undefined) {
    console.error('usage: own-keys <generated directory>');
    process.exitCode = 2;
    return;
  }
  try {
    ownKeysInDirectory(dir);
  } catch (error: unknown) {
    if (!(error instanceof OwnKeysError)) throw error;
    console.error(error.message);
    process.exitCode = 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
