import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { BadRequest, ErrorInfo } from '../../generated/google/rpc/error_details.js';
import { Status } from '../../generated/google/rpc/status.js';

/** A field a request got wrong, as the server's `google.rpc.BadRequest` names it. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/**
 * A call cfgd refused or could not answer: the gRPC code, and what the
 * server's rich error details say (`google.rpc.ErrorInfo` reason and
 * metadata, `google.rpc.BadRequest` field violations).
 */
export class CfgdClientError extends Error {
  override name = 'CfgdClientError';

  constructor(
    /** The gRPC status code (`status.NOT_FOUND` …). */
    readonly code: GrpcStatus,
    message: string,
    /** The ErrorInfo reason (`CONFIG_NOT_FOUND`, `VERSION_MISMATCH` …), when the server gave one. */
    readonly reason: string | undefined,
    readonly metadata: Readonly<Record<string, string>>,
    readonly fieldViolations: readonly FieldViolation[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The code's canonical name, e.g. `NOT_FOUND`. */
  get codeName(): string {
    return GrpcStatus[this.code] ?? String(this.code);
  }

  /** One readable line: `NOT_FOUND CONFIG_NOT_FOUND: users/a/configs/b does not exist (field: why; …)`. */
  describe(): string {
    const fields = this.fieldViolations.map((v) => `${v.field}: ${v.description}`).join('; ');
    const reason = this.reason === undefined || this.reason === this.codeName ? '' : ` ${this.reason}`;
    return `${this.codeName}${reason}: ${this.message}${fields === '' ? '' : ` (${fields})`}`;
  }

  /** The error a grpc-js call failed with, its rich details decoded from `grpc-status-details-bin`. */
  static from(error: ServiceError): CfgdClientError {
    let reason: string | undefined;
    let metadata: Record<string, string> = {};
    let fieldViolations: FieldViolation[] = [];
    const raw = error.metadata?.get('grpc-status-details-bin')[0];
    if (raw instanceof Buffer) {
      try {
        for (const detail of Status.decode(raw).details) {
          if (detail.typeUrl === 'type.googleapis.com/google.rpc.ErrorInfo') {
            const info = ErrorInfo.decode(detail.value);
            reason = info.reason;
            metadata = info.metadata;
          } else if (detail.typeUrl === 'type.googleapis.com/google.rpc.BadRequest') {
            fieldViolations = BadRequest.decode(detail.value).fieldViolations.map(({ field, description }) => ({
              field,
              description,
            }));
          }
        }
      } catch {
        // Details that do not decode (another server behind the address): the code and message remain.
      }
    }
    return new CfgdClientError(error.code, error.details, reason, metadata, fieldViolations, { cause: error });
  }
}

/** A thrown value as a `CfgdClientError` (grpc-js errors decoded; anything else as UNKNOWN). */
export function toClientError(error: unknown): CfgdClientError {
  if (error instanceof CfgdClientError) return error;
  if (isServiceError(error)) return CfgdClientError.from(error);
  const message = error instanceof Error ? error.message : String(error);
  return new CfgdClientError(GrpcStatus.UNKNOWN, message, undefined, {}, [], { cause: error });
}

function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === 'number' && 'details' in error;
}
