// What the signed-in principal may do, from its grants (`GET /v1/whoami`), so that the console
// offers only what the server would allow. The server decides every call regardless.
import type { Grant } from './types.js';

/** The verbs of cfgd's grants. */
export type Verb = 'read' | 'write' | 'watch' | 'admin';

const WILDCARD = '*';

/** `[user, config]` of a resource pattern `users/{u}/configs/{c}`, or undefined if it is not one. */
function parse(resource: string): [string, string] | undefined {
  const parts = resource.split('/');
  if (parts.length !== 4 || parts[0] !== 'users' || parts[2] !== 'configs') return undefined;
  return [parts[1] ?? '', parts[3] ?? ''];
}

function matches(pattern: string, name: string): boolean {
  return pattern === WILDCARD || pattern === name;
}

/** True when the grant's verb is `verb`, or `admin` (which includes read, write and watch). */
function grantsVerb(grant: Grant, verb: Verb): boolean {
  return grant.verb === verb || grant.verb === 'admin';
}

/**
 * True when `grants` allow `verb` on `users/{user}/configs/{config}`: a grant of that verb (or
 * `admin`) whose pattern names the user and the config, either of which may be `*`.
 */
export function allows(grants: readonly Grant[], verb: Verb, user: string, config: string): boolean {
  return grants.some((grant) => {
    const pattern = parse(grant.resource);
    return pattern !== undefined && grantsVerb(grant, verb) && matches(pattern[0], user) && matches(pattern[1], config);
  });
}

/** True when `grants` allow `verb` on at least one config of `user` (what ListConfigs asks). */
export function allowsSomeOf(grants: readonly Grant[], verb: Verb, user: string): boolean {
  return grants.some((grant) => {
    const pattern = parse(grant.resource);
    return pattern !== undefined && grantsVerb(grant, verb) && matches(pattern[0], user);
  });
}

/** The users the grants name (not `*`), sorted, each once. */
export function namedUsers(grants: readonly Grant[]): string[] {
  const users = new Set<string>();
  for (const grant of grants) {
    const pattern = parse(grant.resource);
    if (pattern !== undefined && pattern[0] !== WILDCARD && pattern[0] !== '') users.add(pattern[0]);
  }
  return [...users].sort();
}

/** True when some grant covers every user: its pattern's user is `*`. */
export function coversAnyUser(grants: readonly Grant[]): boolean {
  return grants.some((grant) => parse(grant.resource)?.[0] === WILDCARD);
}
