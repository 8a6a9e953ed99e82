import { CfgdError, resourceName, type ConfigKey, type ConfigVersion } from '../../domain/index.js';
import type { ConfigStore } from '../../store/store.js';

/** How many versions one store read takes while catching up. */
export const READ_BATCH = 256;
/** How long a reader waits before reading again from a store that was unavailable, unless told otherwise. */
export const DEFAULT_RETRY_MS = 1000;

/**
 * The error of a broken "version N + 1 follows version N" invariant: a
 * server fault (INTERNAL, with a readable message), never the client's.
 */
export function sequenceBroken(key: ConfigKey, previous: number, got: number): CfgdError {
  const resource = resourceName(key);
  return new CfgdError(
    'internal',
    'WATCH_SEQUENCE_BROKEN',
    `${resource}: version ${got} arrived after version ${previous}; the watch expected version ${previous + 1}`,
    { metadata: { resource, expected_version: String(previous + 1), got_version: String(got) } },
  );
}

/**
 * Up to `limit` versions of `key` after `after`, read from the store and
 * checked to be consecutive from `after + 1`: every version that enters the
 * watch module (a channel's catch-up, a stream's history) is read here, so
 * this is where the order of versions is checked. Throws WATCH_SEQUENCE_BROKEN
 * (kind 'internal') otherwise, or `PrunedVersions` when retention removed the
 * versions at the start; store errors pass through.
 */
/**
 * Thrown by `readVersionsAfter` when the versions asked for start below the
 * config's first kept version: retention pruned them. Not a fault: a stream
 * resynchronises from the current state.
 */
export class PrunedVersions extends Error {
  constructor(
    readonly key: ConfigKey,
    readonly after: number,
    readonly firstKept: number,
  ) {
    super(`${resourceName(key)}: versions after ${after} start at ${firstKept}; the ones before were pruned`);
  }
}

export async function readVersionsAfter(
  store: ConfigStore,
  key: ConfigKey,
  after: number,
  limit: number,
): Promise<ConfigVersion[]> {
  const batch = await store.versionsAfter(key, after, limit);
  const first = batch[0];
  if (first !== undefined && first.version > after + 1) {
    // A gap at the start is retention's when the history now starts above `after + 1`.
    const firstKept = await store.firstKeptVersion(key);
    if (firstKept > after + 1 && first.version === firstKept) throw new PrunedVersions(key, after, firstKept);
  }
  let previous = after;
  for (const version of batch) {
    if (version.version !== previous + 1) throw sequenceBroken(key, previous, version.version);
    previous = version.version;
  }
  return batch;
}
