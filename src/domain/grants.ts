import { invalidField } from './errors.js';
import { validateName } from './names.js';

/**
 * What a grant allows. `read` covers Get and History, `write` covers Put,
 * `watch` covers Watch; `admin` covers all three on its resources and, on
 * every config (`users/*‍/configs/*`), the management of tokens and bindings.
 * The verbs are otherwise independent: `write` does not imply `read`.
 */
export const VERBS = ['read', 'write', 'watch', 'admin'] as const;
export type Verb = (typeof VERBS)[number];

/**
 * A permission: a verb on a resource pattern `users/{user_id}/configs/{config_name}`
 * where either segment may be `*` (any name).
 */
export interface Grant {
  readonly verb: Verb;
  readonly resource: string;
}

/** What an RPC asks for: `admin` on this resource manages tokens and bindings. */
export const EVERY_CONFIG = 'users/*/configs/*';

/** The most grants one token or binding may carry. */
export const MAX_GRANTS = 100;

const WILDCARD = '*';

/**
 * A grant from its parts, or INVALID_ARGUMENT naming `field`: the verb must be
 * one of `VERBS`, the resource `users/{u}/configs/{c}` with names or `*`.
 */
export function validateGrant(field: string, verb: unknown, resource: unknown): Grant {
  if (typeof verb !== 'string' || !(VERBS as readonly string[]).includes(verb)) {
    throw invalidField(`${field}.verb`, 'GRANT_INVALID', `must be one of ${VERBS.join(', ')}, got ${show(verb)}`);
  }
  if (typeof resource !== 'string') {
    throw invalidField(`${field}.resource`, 'GRANT_INVALID', 'must be users/{user_id}/configs/{config_name}');
  }
  const parts = resource.split('/');
  if (parts.length !== 4 || parts[0] !== 'users' || parts[2] !== 'configs') {
    throw invalidField(
      `${field}.resource`,
      'GRANT_INVALID',
      `must be users/{user_id}/configs/{config_name} (either name may be *), got ${show(resource)}`,
    );
  }
  for (const [index, segment] of [
    [1, 'user_id'],
    [3, 'config_name'],
  ] as const) {
    const part = parts[index];
    if (part !== WILDCARD) validateName(`${field}.resource ${segment}`, part);
  }
  return { verb: verb as Verb, resource };
}

/** Validates a list of grants (at most `MAX_GRANTS`), dropping exact duplicates and keeping order. */
export function validateGrants(field: string, grants: readonly { verb: unknown; resource: unknown }[]): Grant[] {
  if (grants.length > MAX_GRANTS) {
    throw invalidField(field, 'GRANT_INVALID', `at most ${MAX_GRANTS} grants, got ${grants.length}`);
  }
  const seen = new Set<string>();
  const valid: Grant[] = [];
  grants.forEach((grant, index) => {
    const checked = validateGrant(`${field}[${index}]`, grant.verb, grant.resource);
    const text = formatGrant(checked);
    if (!seen.has(text)) {
      seen.add(text);
      valid.push(checked);
    }
  });
  return valid;
}

/**
 * A grant written as `verb:resource`, e.g. `read:users/alice/configs/*` (the
 * form of the JWT grants claim and the CLI).
 */
export function parseGrant(field: string, text: string): Grant {
  const colon = text.indexOf(':');
  if (colon < 0) {
    throw invalidField(field, 'GRANT_INVALID', `must be verb:users/{user_id}/configs/{config_name}, got ${show(text)}`);
  }
  return validateGrant(field, text.slice(0, colon), text.slice(colon + 1));
}

export function formatGrant(grant: Grant): string {
  return `${grant.verb}:${grant.resource}`;
}

/**
 * True when `grants` allow `verb` on `resource`, a resource name
 * `users/{u}/configs/{c}` where `c` may be `*` (a user watch asks for every
 * config of the user, which only a grant with `*` there covers). `admin`
 * allows every verb on the resources it covers.
 */
export function allows(grants: readonly Grant[], verb: Verb, resource: string): boolean {
  return grants.some((grant) => (grant.verb === verb || grant.verb === 'admin') && covers(grant.resource, resource));
}

/**
 * True when `grants` allow `verb` on at least one config of `userId`: some
 * grant's pattern names that user (or `*`). A list of the user's configs is
 * authorized by this before any lookup, then filtered config by config.
 */
export function allowsSomeOf(grants: readonly Grant[], verb: Verb, userId: string): boolean {
  return grants.some(
    (grant) =>
      (grant.verb === verb || grant.verb === 'admin') && covers(userPattern(grant.resource), `users/${userId}`),
  );
}

/** `users/{u}` of a grant's resource pattern `users/{u}/configs/{c}`. */
function userPattern(resource: string): string {
  const end = resource.indexOf('/', 'users/'.length);
  return end < 0 ? resource : resource.slice(0, end);
}

/**
 * True when the pattern covers the resource segment by segment: equal, or `*`
 * in the pattern. Runs on every call, so it walks both strings in place
 * rather than splitting them.
 */
function covers(pattern: string, resource: string): boolean {
  if (pattern === resource) return true;
  let p = 0;
  let r = 0;
  for (;;) {
    const pEnd = endOfSegment(pattern, p);
    const rEnd = endOfSegment(resource, r);
    const wildcard = pEnd - p === 1 && pattern.charCodeAt(p) === STAR;
    if (!wildcard && !sameSegment(pattern, p, pEnd, resource, r, rEnd)) return false;
    const pDone = pEnd === pattern.length;
    const rDone = rEnd === resource.length;
    if (pDone || rDone) return pDone && rDone;
    p = pEnd + 1;
    r = rEnd + 1;
  }
}

const STAR = 42; // '*'

function sameSegment(a: string, aFrom: number, aEnd: number, b: string, bFrom: number, bEnd: number): boolean {
  if (aEnd - aFrom !== bEnd - bFrom) return false;
  for (let i = 0; i < aEnd - aFrom; i++) {
    if (a.charCodeAt(aFrom + i) !== b.charCodeAt(bFrom + i)) return false;
  }
  return true;
}

function endOfSegment(text: string, from: number): number {
  const slash = text.indexOf('/', from);
  return slash < 0 ? text.length : slash;
}

function show(value: unknown): string {
  return typeof value === 'string'
    ? JSON.stringify(value.length > 64 ? `${value.slice(0, 64)}…` : value)
    : typeof value;
}
