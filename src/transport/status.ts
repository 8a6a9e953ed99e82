import { status as GrpcCode } from '@grpc/grpc-js';
import { CfgdError, type ErrorKind, type FieldViolation, type KindAndReason } from '../domain/index.js';

/** ErrorInfo.domain of every error cfgd reports. */
export const ERROR_DOMAIN = 'cfgd.v1';

interface WireStatus {
  readonly grpc: GrpcCode;
  readonly http: number;
}

/** The one table from domain errors to gRPC codes and HTTP statuses. */
const TABLE: Record<ErrorKind, WireStatus> = {
  'invalid-argument': { grpc: GrpcCode.INVALID_ARGUMENT, http: 400 },
  'failed-precondition': { grpc: GrpcCode.FAILED_PRECONDITION, http: 400 },
  'out-of-range': { grpc: GrpcCode.OUT_OF_RANGE, http: 400 },
  unauthenticated: { grpc: GrpcCode.UNAUTHENTICATED, http: 401 },
  'permission-denied': { grpc: GrpcCode.PERMISSION_DENIED, http: 403 },
  'not-found': { grpc: GrpcCode.NOT_FOUND, http: 404 },
  'version-mismatch': { grpc: GrpcCode.ABORTED, http: 409 },
  'already-exists': { grpc: GrpcCode.ALREADY_EXISTS, http: 409 },
  'resource-exhausted': { grpc: GrpcCode.RESOURCE_EXHAUSTED, http: 429 },
  'deadline-exceeded': { grpc: GrpcCode.DEADLINE_EXCEEDED, http: 504 },
  cancelled: { grpc: GrpcCode.CANCELLED, http: 499 },
  unimplemented: { grpc: GrpcCode.UNIMPLEMENTED, http: 501 },
  unavailable: { grpc: GrpcCode.UNAVAILABLE, http: 503 },
  internal: { grpc: GrpcCode.INTERNAL, http: 500 },
};

/**
 * An error raised by a transport itself (an unknown route, a body over the
 * limit …) whose HTTP status is more precise than its gRPC code's: 405, 413, 415.
 */
export class HttpStatusError extends CfgdError {
  readonly headers: Record<string, string>;

  constructor(
    readonly httpStatus: number,
    ...[kind, reason, message, headers = {}]: [...KindAndReason, message: string, headers?: Record<string, string>]
  ) {
    // The pair was checked at the call; destructured, the compiler no longer sees it as one.
    super(...([kind, reason] as KindAndReason), message);
    this.headers = headers;
  }
}

/** An error as every transport reports it. */
export interface WireError {
  readonly grpcCode: GrpcCode;
  /** The gRPC code's canonical name, e.g. `INVALID_ARGUMENT`. */
  readonly grpcName: string;
  readonly httpStatus: number;
  readonly message: string;
  readonly reason: string;
  readonly metadata: Record<string, string>;
  readonly fieldViolations: readonly FieldViolation[];
}

/**
 * Maps any thrown value to its wire form. A `CfgdError` keeps its message;
 * anything else is INTERNAL with a generic message, and `onUnexpected` gets the
 * original so it can be logged (its text may hold details clients must not see).
 */
export function toWireError(error: unknown, onUnexpected: (error: unknown) => void): WireError {
  if (!(error instanceof CfgdError)) {
    onUnexpected(error);
    return toWireError(new CfgdError('internal', 'INTERNAL', 'internal error'), () => {});
  }
  const wire = TABLE[error.kind];
  return {
    grpcCode: wire.grpc,
    grpcName: GrpcCode[wire.grpc],
    httpStatus: error instanceof HttpStatusError ? error.httpStatus : wire.http,
    message: error.message,
    reason: error.reason,
    metadata: error.metadata,
    fieldViolations: error.fieldViolations,
  };
}
