import type { ConfigKey, InstanceReport } from '../domain/index.js';

/**
 * Where instances' reports on configs live (fleet convergence): in the same
 * database as the configs, so every node of a shared backend lists the
 * reports any node received. Part of the storage contract
 * (`test/conformance`); every backend keeps it.
 *
 * A store keeps at most one report per instance and config: a new report
 * replaces the instance's previous one. Reports are not history: the app
 * forgets an instance that stays silent (`expireReports`).
 */
export interface InstanceStore {
  /** Stores the report, replacing the one of the same instance on this config, if any. */
  putReport(key: ConfigKey, report: InstanceReport): Promise<void>;

  /**
   * The reports on a config received at or after `since`, ordered by
   * instance id; at most `limit` of them (the first by instance id).
   */
  reports(key: ConfigKey, since: Date, limit: number): Promise<InstanceReport[]>;

  /** Removes every report, of every config, received before `before`; resolves with how many it removed. */
  expireReports(before: Date): Promise<number>;
}
