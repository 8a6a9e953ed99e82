import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import type { CfgdError } from '../domain/index.js';
import type { CallObserver, ObservedOperation, OperationObserver } from '../transport/observer.js';
import { CellCounter, CellHistogram, LATENCY_BUCKETS, type CounterChild } from './cells.js';

/**
 * Metrics of every call, under the names of the grpc-ecosystem Prometheus
 * interceptors (`grpc_server_*`) and of HTTP servers (`http_*`), labelled
 * only by what the server defines (RPC, route template, code): never a user,
 * a config name or a value.
 */
export function callMetrics(registry: Registry): CallObserver {
  const started = new CellCounter('grpc_server_started_total', 'gRPC calls started on the server.', registry);
  const handled = new CellCounter(
    'grpc_server_handled_total',
    'gRPC calls completed on the server, by status code.',
    registry,
  );
  const handling = new CellHistogram(
    'grpc_server_handling_seconds',
    'Time from the start of a gRPC call to its end (a stream: its whole life).',
    registry,
    LATENCY_BUCKETS,
  );
  const requests = new CellCounter('http_requests_total', 'REST requests answered, by status code.', registry);
  const duration = new CellHistogram(
    'http_request_duration_seconds',
    'Time from a REST request to the end of its response (an SSE stream: its whole life).',
    registry,
    LATENCY_BUCKETS,
  );
  const authFailures = new CellCounter(
    'cfgd_auth_failures_total',
    'Calls refused by authentication (UNAUTHENTICATED) or authorization (PERMISSION_DENIED), by reason.',
    registry,
  );
  const failuresByReason = new Map<string, CounterChild>();
  const countAuthFailure = (error: CfgdError | undefined): void => {
    if (error === undefined || (error.kind !== 'unauthenticated' && error.kind !== 'permission-denied')) return;
    let child = failuresByReason.get(error.reason);
    if (child === undefined) {
      // Reasons are the server's own constants (TOKEN_MISSING, TOKEN_EXPIRED …): a bounded set.
      child = authFailures.child({ reason: error.reason });
      failuresByReason.set(error.reason, child);
    }
    child.value += 1;
  };

  return {
    operation(operation: ObservedOperation): OperationObserver {
      return operation.transport === 'grpc'
        ? grpcOperation(operation, started, handled, handling, countAuthFailure)
        : restOperation(operation, requests, duration, countAuthFailure);
    },
  };
}

function grpcOperation(
  operation: ObservedOperation,
  started: CellCounter,
  handled: CellCounter,
  handling: CellHistogram,
  countAuthFailure: (error: CfgdError | undefined) => void,
): OperationObserver {
  const slash = operation.method.lastIndexOf('/');
  const labels = {
    grpc_service: operation.method.slice(0, slash),
    grpc_method: operation.method.slice(slash + 1),
    grpc_type: operation.streaming ? 'server_stream' : 'unary',
  };
  const start = started.child(labels);
  const time = handling.child(labels);
  // One series per code actually seen, made on first use.
  const byCode: (CounterChild | undefined)[] = [];
  return {
    started() {
      start.value += 1;
    },
    finished(code, seconds, _info, error) {
      const child = (byCode[code] ??= handled.child({ ...labels, grpc_code: GRPC_CODE_LABELS[code] ?? String(code) }));
      child.value += 1;
      time.observe(seconds);
      if (code !== (GrpcStatus.OK as number)) countAuthFailure(error);
    },
  };
}

/**
 * The `grpc_code` label as grpc-go's `codes.Code.String()` spells it (`NotFound`), which
 * go-grpc-prometheus exports and existing dashboards and alerts expect.
 */
const GRPC_CODE_LABELS: readonly string[] = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
];

function restOperation(
  operation: ObservedOperation,
  requests: CellCounter,
  duration: CellHistogram,
  countAuthFailure: (error: CfgdError | undefined) => void,
): OperationObserver {
  const labels = { method: operation.method, route: operation.route };
  const time = duration.child(labels);
  const byStatus = new Map<number, CounterChild>();
  return {
    started() {},
    finished(status, seconds, _info, error) {
      let child = byStatus.get(status);
      if (child === undefined) {
        child = requests.child({ ...labels, code: String(status) });
        byStatus.set(status, child);
      }
      child.value += 1;
      time.observe(seconds);
      if (status >= 400) countAuthFailure(error);
    },
  };
}
