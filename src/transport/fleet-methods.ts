import type { FleetApp } from '../app/fleet-app.js';
import type {
  InstanceReport as InstanceReportMessage,
  ListInstancesRequest,
  ListInstancesResponse,
  ReportInstanceRequest,
  ReportInstanceResponse,
} from '../../generated/cfgd/v1/fleet_service.js';
import type { InstanceReport } from '../domain/index.js';
import type { UnaryMethod } from './methods.js';

/** The RPCs of `cfgd.v1.FleetService`. */
export interface FleetServiceMethods {
  readonly ReportInstance: UnaryMethod<ReportInstanceRequest, ReportInstanceResponse>;
  readonly ListInstances: UnaryMethod<ListInstancesRequest, ListInstancesResponse>;
}

function toInstanceMessage(report: InstanceReport): InstanceReportMessage {
  return {
    instanceId: report.instanceId,
    appliedVersion: report.appliedVersion,
    failedVersion: report.failedVersion,
    error: report.error,
    reportTime: report.reportedAt,
    reportedBy: report.reportedBy,
  };
}

/** FleetService once, for both transports: messages in, app calls, messages out. */
export function fleetServiceMethods(app: FleetApp): FleetServiceMethods {
  return {
    ReportInstance: {
      kind: 'unary',
      async call(req, ctx) {
        return { instance: toInstanceMessage(await app.report(ctx, req)) };
      },
    },
    ListInstances: {
      kind: 'unary',
      async call(req, ctx) {
        const { latestVersion, instances, converged } = await app.list(ctx, req);
        return {
          latestVersion,
          instances: instances.map(toInstanceMessage),
          converged,
          instanceTtlMs: app.instanceTtlMs,
        };
      },
    },
  };
}
