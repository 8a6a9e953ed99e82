import type { ConfigKey, InstanceReport } from '../../domain/index.js';
import type { InstanceStore } from '../instance-store.js';
import type BetterSqlite3 from 'better-sqlite3';

/**
 * The instance reports table, created beside the config tables (see
 * `openDatabase`): one row per config and instance, times in epoch ms as in
 * `config_versions`. The index on `reported_at` makes expiry a range delete.
 */
export const INSTANCE_SCHEMA = `
CREATE TABLE IF NOT EXISTS instance_reports (
  user_id         TEXT NOT NULL,
  config_name     TEXT NOT NULL,
  instance_id     TEXT NOT NULL,
  applied_version INTEGER NOT NULL,
  failed_version  INTEGER NOT NULL,
  error           TEXT NOT NULL,
  reported_at     INTEGER NOT NULL,
  reported_by     TEXT NOT NULL,
  PRIMARY KEY (user_id, config_name, instance_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS instance_reports_by_time ON instance_reports (reported_at);
`;

interface ReportRow {
  readonly instance_id: string;
  readonly applied_version: number;
  readonly failed_version: number;
  readonly error: string;
  readonly reported_at: number;
  readonly reported_by: string;
}

/** `InstanceStore` on the embedded store's SQLite database: one statement per method. */
export class EmbeddedInstances implements InstanceStore {
  private readonly stmts;

  constructor(db: BetterSqlite3.Database) {
    this.stmts = {
      put: db.prepare(
        `INSERT INTO instance_reports (user_id, config_name, instance_id, applied_version, failed_version, error,
           reported_at, reported_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (user_id, config_name, instance_id) DO UPDATE SET applied_version = excluded.applied_version,
           failed_version = excluded.failed_version, error = excluded.error, reported_at = excluded.reported_at,
           reported_by = excluded.reported_by`,
      ),
      reports: db.prepare<[string, string, number, number], ReportRow>(
        `SELECT instance_id, applied_version, failed_version, error, reported_at, reported_by FROM instance_reports
         WHERE user_id = ? AND config_name = ? AND reported_at >= ? ORDER BY instance_id LIMIT ?`,
      ),
      expire: db.prepare('DELETE FROM instance_reports WHERE reported_at < ?'),
    };
  }

  async putReport(key: ConfigKey, report: InstanceReport): Promise<void> {
    this.stmts.put.run(
      key.userId,
      key.configName,
      report.instanceId,
      report.appliedVersion,
      report.failedVersion,
      report.error,
      report.reportedAt.getTime(),
      report.reportedBy,
    );
  }

  async reports(key: ConfigKey, since: Date, limit: number): Promise<InstanceReport[]> {
    return this.stmts.reports.all(key.userId, key.configName, since.getTime(), limit).map((row) => ({
      instanceId: row.instance_id,
      appliedVersion: row.applied_version,
      failedVersion: row.failed_version,
      error: row.error,
      reportedAt: new Date(row.reported_at),
      reportedBy: row.reported_by,
    }));
  }

  async expireReports(before: Date): Promise<number> {
    return this.stmts.expire.run(before.getTime()).changes;
  }
}
