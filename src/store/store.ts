import type { AuditEntry, ConfigKey, ConfigVersion, WritePlan } from '../domain/index.js';

/** What a store holds open right now. */
export interface StoreStats {
  /** Live `subscribe` registrations. */
  readonly subscriptions: number;
  /** Changefeeds (or similar database subscriptions) open for them. */
  readonly changefeeds: number;
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
 * The storage contract every backend keeps; `test/conformance` holds it as
 * executable test bodies. Stores speak domain types only.
 */
export interface ConfigStore {
  /**
   * Calls `plan` with the config's current version and, when the plan creates
   * a version, stores that version and its audit entry atomically: both or
   * neither. Concurrent writes to one config serialize, each on the version
   * it planned against. `plan` may run more than once (an optimistic backend
   * retries after losing a race), so it must be pure; errors it throws are
   * passed through and nothing is written. Resolves with the plan that took
   * effect once the write is durable.
   */
  write(key: ConfigKey, plan: (current: ConfigVersion | undefined) => WritePlan): Promise<WritePlan>;

  /** The latest version, or undefined when the config does not exist. */
  latest(key: ConfigKey): Promise<ConfigVersion | undefined>;

  /** One version, or undefined when the config or the version does not exist. */
  version(key: ConfigKey, version: number): Promise<ConfigVersion | undefined>;

  /** Up to `limit` versions greater than `after`, in ascending order, with their values. */
  versionsAfter(key: ConfigKey, after: number, limit: number): Promise<ConfigVersion[]>;

  /** Up to `limit` audit entries from version `from` on, in ascending order. */
  auditEntries(key: ConfigKey, from: number, limit: number): Promise<AuditEntry[]>;

  /** The latest version of every config of a user, ordered by config name. */
  listLatest(userId: string): Promise<ConfigVersion[]>;

  /**
   * Calls `wake` after writes in `scope` commit, on this node or (for shared
   * backends) any other. A wake-up is a hint, not a record: several writes may
   * share one call, and readers fetch what they missed with `versionsAfter`.
   * Resolves once every later commit is certain to wake the listener.
   */
  subscribe(scope: SubscriptionScope, wake: Wake): Promise<Unsubscribe>;

  /** Counters for operators and leak tests. */
  stats(): StoreStats;

  /** Releases the backend's resources; pending subscriptions stop waking. */
  close(): Promise<void>;
}
