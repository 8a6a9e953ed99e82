import { configUuid, type ConfigKey, type InstanceReport } from '../../domain/index.js';
import type { InstanceStore } from '../instance-store.js';
import type { RethinkConnection } from './connection.js';
import { writeFailed } from './credentials.js';
import { q, reportDocId, type ReportDoc, type WriteResult } from './queries.js';

export interface RethinkDbInstancesOptions {
  readonly connection: RethinkConnection;
  readonly db: string;
}

/**
 * `InstanceStore` on the cluster backend: reports in `cfgd_instance_reports`,
 * one document per config and instance (primary key `reportDocId`), times in
 * epoch ms. A report is one document written whole, so each write is atomic,
 * and writing one twice (a retry after an indeterminate failure) leaves what
 * writing it once does. Reads of a config go through the `[config_id,
 * instance_id]` index in its order, expiry through the index on the time.
 * Failures of availability are `DatabaseUnavailableError`s from the connection.
 */
export class RethinkDbInstances implements InstanceStore {
  private readonly connection: RethinkConnection;
  private readonly db: string;

  constructor(options: RethinkDbInstancesOptions) {
    this.connection = options.connection;
    this.db = options.db;
  }

  async putReport(key: ConfigKey, report: InstanceReport): Promise<void> {
    const result = await this.connection.run<WriteResult>(
      q.putReport(this.db, toReportDoc(key, report)),
      'store an instance report',
    );
    if ((result.errors ?? 0) > 0) throw writeFailed('storing an instance report', result);
  }

  async reports(key: ConfigKey, since: Date, limit: number): Promise<InstanceReport[]> {
    const docs = await this.connection.run<ReportDoc[]>(
      q.reports(this.db, configUuid(key), since.getTime(), limit),
      'read instance reports',
    );
    return docs.map(toInstanceReport);
  }

  /** Not atomic across documents: a failure part-way leaves the rest for the next expiry. */
  async expireReports(before: Date): Promise<number> {
    const result = await this.connection.run<WriteResult>(
      q.expireReports(this.db, before.getTime()),
      'expire instance reports',
    );
    if ((result.errors ?? 0) > 0) throw writeFailed('expiring instance reports', result);
    return result.deleted ?? 0;
  }
}

function toReportDoc(key: ConfigKey, report: InstanceReport): ReportDoc {
  const configId = configUuid(key);
  return {
    id: reportDocId(configId, report.instanceId),
    config_id: configId,
    user_id: key.userId,
    config_name: key.configName,
    instance_id: report.instanceId,
    report_key: [configId, report.instanceId],
    applied_version: report.appliedVersion,
    failed_version: report.failedVersion,
    error: report.error,
    reported_at: report.reportedAt.getTime(),
    reported_by: report.reportedBy,
  };
}

function toInstanceReport(doc: ReportDoc): InstanceReport {
  return {
    instanceId: doc.instance_id,
    appliedVersion: doc.applied_version,
    failedVersion: doc.failed_version,
    error: doc.error,
    reportedAt: new Date(doc.reported_at),
    reportedBy: doc.reported_by,
  };
}
