import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { ErrorInfo, BadRequest } from '../../../generated/google/rpc/error_details.js';
import { Status } from '../../../generated/google/rpc/status.js';
import { ERROR_DOMAIN, toWireError } from '../status.js';

/** The trailer that carries a `google.rpc.Status` with rich error details. */
export const STATUS_DETAILS_KEY = 'grpc-status-details-bin';

/**
 * A gRPC error for any thrown value, with a `google.rpc.Status` (ErrorInfo and,
 * for invalid fields, BadRequest) in the `grpc-status-details-bin` trailer.
 */
export function toServiceError(error: unknown, onUnexpected: (error: unknown) => void): Partial<ServiceError> {
  const wire = toWireError(error, onUnexpected);
  const details = [
    {
      typeUrl: 'type.googleapis.com/google.rpc.ErrorInfo',
      value: Buffer.from(
        ErrorInfo.encode({ reason: wire.reason, domain: ERROR_DOMAIN, metadata: wire.metadata }).finish(),
      ),
    },
  ];
  if (wire.fieldViolations.length > 0) {
    const fieldViolations = wire.fieldViolations.map((v) => ({
      ...v,
      reason: wire.reason,
      localizedMessage: undefined,
    }));
    details.push({
      typeUrl: 'type.googleapis.com/google.rpc.BadRequest',
      value: Buffer.from(BadRequest.encode({ fieldViolations }).finish()),
    });
  }
  const metadata = new Metadata();
  metadata.set(
    STATUS_DETAILS_KEY,
    Buffer.from(Status.encode({ code: wire.grpcCode, message: wire.message, details }).finish()),
  );
  return { code: wire.grpcCode, details: wire.message, metadata };
}
