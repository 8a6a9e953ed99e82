import {
  CfgdError,
  fingerprint,
  replay,
  resourceName,
  seal,
  withBlame,
  validateRequestId,
  type ConfigKey,
  type ConfigSchema,
  type ConfigVersion,
  type JsonValue,
  type Planner,
  type RequestIdentity,
  type WriteOutcome,
} from '../domain/index.js';
import type { ConfigStore } from '../store/store.js';
import type { Pruner } from './retention.js';

/**
 * What a write would plan against now: the latest version and its schema
 * (read one after the other; a dry run answers for this moment only).
 */
export async function currentState(
  store: ConfigStore,
  key: ConfigKey,
): Promise<[ConfigVersion | undefined, ConfigSchema | undefined]> {
  const latest = await store.latest(key);
  return [latest, await store.schema(key, latest?.audit.schemaVersion ?? 0)];
}

/** A write as the use cases hand it over: its plan, and what makes a retry of it recognisable. */
export interface Write {
  readonly planner: Planner;
  readonly validateOnly?: boolean | undefined;
  /** The client's request id (AIP-155), unvalidated; '' or undefined: none. */
  readonly requestId?: string | undefined;
  /** The operation and every field that defines the request, for its fingerprint. */
  readonly operation: string;
  readonly request: JsonValue;
}

/**
 * Runs a write's plan: through the store (atomic, serialized with every
 * other write of the config), or, for a dry run (`validate_only`, AIP-163),
 * against the current state without writing: the same plan, the same answer
 * a write would give now. With a request id, a retry answers what its first
 * call did (the same version, `changed` as it was); the same id with another
 * request is INVALID_ARGUMENT. A dry run ignores the id.
 */
export async function commit(store: ConfigStore, key: ConfigKey, write: Write, pruner?: Pruner): Promise<WriteOutcome> {
  const requestId = validateRequestId(write.requestId);
  // Every version a write creates carries who set each key, and is sealed into its config's hash chain.
  const planner: Planner = (current, schema) => seal(withBlame(write.planner(current, schema), current), current);
  if (write.validateOnly === true) return planner(...(await currentState(store, key)));
  const identity: RequestIdentity | undefined =
    requestId === undefined ? undefined : { requestId, fingerprint: fingerprint(write.operation, write.request) };
  const result = await store.write(key, planner, identity);
  if (result.kind === 'replay' && identity !== undefined) replay(key, result.record, identity);
  if (result.kind === 'create') pruner?.written(key, result.next.version);
  return result;
}

/** The version a write left the config at, and whether it wrote one (for a retry: the first call's). */
export async function outcome(
  store: ConfigStore,
  key: ConfigKey,
  result: WriteOutcome,
): Promise<{ readonly config: ConfigVersion; readonly changed: boolean }> {
  switch (result.kind) {
    case 'create':
      return { config: result.next, changed: true };
    case 'unchanged':
      return { config: result.current, changed: false };
    case 'replay': {
      const config = await store.version(key, result.record.version);
      if (config === undefined) {
        throw new CfgdError(
          'not-found',
          'VERSION_NOT_FOUND',
          `${resourceName(key)} no longer keeps version ${result.record.version}, which this request created`,
          { metadata: { resource: resourceName(key), version: String(result.record.version) } },
        );
      }
      return { config, changed: result.record.changed };
    }
  }
}
