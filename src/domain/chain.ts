import { createHash } from 'node:crypto';
import type { ConfigVersion, WritePlan } from './config.js';
import { canonicalJson } from './requests.js';
import type { JsonObject, JsonValue } from './values.js';

/**
 * The hash chain of a config's history: each version stores the SHA-256 of a
 * canonical encoding of everything it records — number, operation, values
 * (or their absence), changes, author, time, schema version, rollback target,
 * the schema it sets — and of the previous version's hash. Editing any stored
 * version, or removing or reordering one, breaks the chain from there on.
 */
export function versionHash(version: ConfigVersion, schema: JsonObject | undefined, previousHash: string): string {
  const { audit } = version;
  const record: JsonValue = {
    version: version.version,
    operation: audit.operation,
    values: version.hasValues ? version.values : null,
    changes: audit.changes.map((change) => ({ ...change })),
    author: audit.author,
    created_at: audit.createdAt.getTime(),
    schema_version: audit.schemaVersion,
    rollback_to: audit.rollbackTo ?? null,
    schema: schema ?? null,
    previous_hash: previousHash,
  };
  return createHash('sha256').update(canonicalJson(record), 'utf8').digest('hex');
}

/**
 * A plan with its new version sealed into the chain: `previousHash` is the
 * current version's hash ('' for a config's first version, or after versions
 * written before the chain existed), `hash` covers the version and it.
 */
export function seal(plan: WritePlan, current: ConfigVersion | undefined): WritePlan {
  if (plan.kind !== 'create') return plan;
  const previousHash = current?.audit.hash ?? '';
  const hash = versionHash(plan.next, plan.schema?.schema, previousHash);
  return { ...plan, next: { ...plan.next, audit: { ...plan.next.audit, hash, previousHash } } };
}

/** Where a history first fails its chain, and how. */
export interface ChainBreak {
  readonly version: number;
  /** `content`: the version does not hash to its stored hash (it was edited); `link`: its previous hash is not its predecessor's (one was replaced or removed); `unsealed`: it has no hash. */
  readonly problem: 'content' | 'link' | 'unsealed';
}

/**
 * Checks a run of consecutive versions (with the schemas the set-schema ones
 * set) against their stored hashes and links; `previous` is the version
 * before the run, if any was checked. Returns the first break, or undefined.
 */
export function checkChain(
  versions: readonly ConfigVersion[],
  schemaOf: (version: ConfigVersion) => JsonObject | undefined,
  previous: ConfigVersion | undefined,
): ChainBreak | undefined {
  let before = previous;
  for (const version of versions) {
    const { hash, previousHash } = version.audit;
    if (hash === undefined || previousHash === undefined) return { version: version.version, problem: 'unsealed' };
    if (versionHash(version, schemaOf(version), previousHash) !== hash)
      return { version: version.version, problem: 'content' };
    if (before !== undefined && before.audit.hash !== previousHash)
      return { version: version.version, problem: 'link' };
    before = version;
  }
  return undefined;
}
