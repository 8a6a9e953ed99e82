import type {
  AuditEntry,
  ConfigKey,
  ConfigSchema,
  ConfigVersion,
  Planner,
  RequestIdentity,
  WriteOutcome,
} from '../domain/index.js';
import type { CredentialStore } from './credential-store.js';
import type { InstanceStore } from './instance-store.js';

/** What a store holds open right now. */
export interface StoreStats {
  /** Live `subscribe` registrations. */
  readonly subscriptions: number;
  /** Changefeeds (or similar database subscriptions) open for them. */
  readonly changefeeds: number;
}

/**
 * What a backend reports as it works, for metrics. Called synchronously on
 * the backend's own path, so an implementation must be cheap and never throw.
 */
export interface StoreEvents {
  /** A transaction committed `writes` writes (several with group commit), taking `seconds` with its fsync. */
  committed(writes: number, seconds: number): void;
  /** A shared backend's connection to the database opened (true) or broke (false). */
  connection(up: boolean): void;
  /** A changefeed was opened again after it broke. */
  feedRestarted(): void;
}

/** Events nobody listens to. */
export const UNHEARD: StoreEvents = { committed() {}, connection() {}, feedRestarted() {} };

/** What a config keeps of its history. */
export interface Retention {
  readonly firstKept: number;
  readonly maxVersions: number | undefined;
}

/** Stops a subscription; calling it twice is harmless. */
export type Unsubscribe = () => void;

/** What a subscription covers: one config, or (without `configName`) every config of a user. */
export interface SubscriptionScope {
  readonly userId: string;
  readonly configName?: string | undefined;
}

/**
 * Called after commits in a subscription's scope with the name of the config
 * that changed, or with undefined when any config in the scope may have
 * changed (for example after a backend lost and regained its feed).
 */
export type Wake = (configName: string | undefined) => void;

/**
 * The number of a config's first version. Versions count up from it by one
 * per write; no number is ever skipped, reused or renumbered.
 */
export const FIRST_VERSION = 1;

/**
 * The storage contract every backend keeps; `test/conformance` holds it as
 * executable test bodies. Stores speak domain types only.
 *
 * A config's history is contiguous: the versions a store keeps of a config are
 * exactly those from its first kept version (`firstKeptVersion`) to its latest
 * (`latest`), every one of them, each once. No backend keeps a version outside
 * that range, and no reader returns one: `version` answers undefined below the
 * first kept version, and `versionsAfter` and `auditEntries` asked to start
 * below it start at it. Readers may rely on this: a run of versions read from
 * the first kept one on ends only at the latest.
 *
 * Retention (`prune`) raises the first kept version, removing versions from
 * the oldest end only; it never goes down again, and never passes the latest.
 */
export interface ConfigStore {
  /**
   * Calls `plan` with the config's current version and the schema in effect
   * there (the one its `schemaVersion` names, read in the same step) and,
   * when the plan creates a version, stores that version, its audit entry and
   * the schema it sets (if any) atomically: all or nothing. Concurrent writes
   * to one config serialize, each on the version it planned against, so no
   * write commits against a schema that a concurrent schema change replaced.
   * `plan` may run more than once (an optimistic backend retries after losing
   * a race), so it must be pure; errors it throws are passed through and
   * nothing is written. Resolves with the plan that took effect once the
   * write is durable.
   *
   * With `request` (a request id and its request's fingerprint), the store
   * first looks for a record of that id on this config, in the same step as
   * it reads the latest version (so a retry racing its original, on any
   * node, finds it): when there is one, it resolves with `replay` and that
   * record, planning and writing nothing. Otherwise it stores the record
   * with what the plan did: atomically with a created version, or on its
   * own for an unchanged plan. Records live at least as long as the
   * versions they name.
   */
  write(key: ConfigKey, plan: Planner, request?: RequestIdentity): Promise<WriteOutcome>;

  /** The latest version, or undefined when the config does not exist. */
  latest(key: ConfigKey): Promise<ConfigVersion | undefined>;

  /**
   * One version, or undefined when the config does not exist or does not keep
   * that version (it is below the first kept version or above the latest).
   */
  version(key: ConfigKey, version: number): Promise<ConfigVersion | undefined>;

  /**
   * Up to `limit` versions greater than `after`, in ascending order, with their
   * values: consecutive versions from `max(after + 1, firstKeptVersion)` on.
   * Fewer than `limit` only when the run reaches the latest version (as of the read).
   */
  versionsAfter(key: ConfigKey, after: number, limit: number): Promise<ConfigVersion[]>;

  /**
   * Up to `limit` audit entries, in ascending order: those of consecutive
   * versions from `max(from, firstKeptVersion)` on. Fewer than `limit` only
   * when the run reaches the latest version (as of the read).
   */
  auditEntries(key: ConfigKey, from: number, limit: number): Promise<AuditEntry[]>;

  /**
   * Where the config's kept history starts: the oldest version the readers can
   * return; every version from it to the latest is kept. `FIRST_VERSION` for a
   * config that never lost a version to retention and for one that has never
   * been written. It never decreases.
   */
  firstKeptVersion(key: ConfigKey): Promise<number>;

  /**
   * The config's retention: its first kept version and its own limit on kept
   * versions (undefined: the server's default; 0: keep every version).
   * Undefined for a config that has never been written.
   */
  retention(key: ConfigKey): Promise<Retention | undefined>;

  /** Sets (or, with undefined, clears) the config's own limit on kept versions; false when it has never been written. */
  setMaxVersions(key: ConfigKey, maxVersions: number | undefined): Promise<boolean>;

  /**
   * Raises the first kept version to `floor` (never lowering it, never past
   * the latest version) and then removes the versions below it, a few at a
   * time so that writes are never held up for long. The schemas that removed
   * versions set and the request ids they carried are kept. Resolves with the
   * first kept version once the removal is done.
   */
  prune(key: ConfigKey, floor: number): Promise<number>;

  /**
   * One schema version of a config, or undefined when it has no such schema
   * version (0 names none). Schema versions are immutable once committed, so
   * backends may cache them.
   */
  schema(key: ConfigKey, schemaVersion: number): Promise<ConfigSchema | undefined>;

  /**
   * Up to `limit` schema versions from `from` on, in ascending order: consecutive,
   * fewer than `limit` only when the run reaches the latest schema version.
   */
  schemas(key: ConfigKey, from: number, limit: number): Promise<ConfigSchema[]>;

  /** The latest version of every config of a user, ordered by config name. */
  listLatest(userId: string): Promise<ConfigVersion[]>;

  /**
   * Calls `wake` after writes in `scope` commit, on this node or (for shared
   * backends) any other. A wake-up is a hint, not a record: several writes may
   * share one call, and readers fetch what they missed with `versionsAfter`.
   * Resolves once every later commit is certain to wake the listener.
   */
  subscribe(scope: SubscriptionScope, wake: Wake): Promise<Unsubscribe>;

  /** Tokens and bindings, in the same database. */
  readonly credentials: CredentialStore;

  /** Instances' reports on configs (fleet convergence), in the same database. */
  readonly instances: InstanceStore;

  /** Counters for operators and leak tests. */
  stats(): StoreStats;

  /**
   * Resolves once the backend has answered a read (of the table every read
   * starts from); rejects, UNAVAILABLE for a shared backend, when it cannot.
   * The health service and `/readyz` follow it.
   */
  ping(): Promise<void>;

  /** Releases the backend's resources; pending subscriptions stop waking. */
  close(): Promise<void>;
}
