/**
 * The domain's error vocabulary. The core throws `CfgdError`; transports map its
 * `kind` to a wire status once, in `src/transport/status.ts`.
 */
export type ErrorKind =
  | 'invalid-argument'
  | 'not-found'
  | 'version-mismatch'
  | 'already-exists'
  | 'unauthenticated'
  | 'permission-denied'
  | 'resource-exhausted'
  | 'unavailable'
  | 'cancelled'
  | 'unimplemented'
  | 'internal';

/** One invalid field of a request, as reported to the client. */
export interface FieldViolation {
  field: string;
  description: string;
}

export interface CfgdErrorOptions {
  /** Extra machine-readable facts for the client (ErrorInfo metadata). */
  metadata?: Record<string, string>;
  /** Fields that made the request invalid (BadRequest field violations). */
  fieldViolations?: FieldViolation[];
  /** The underlying error, kept for logs and never sent to clients. */
  cause?: unknown;
}

export class CfgdError extends Error {
  readonly kind: ErrorKind;
  /** UPPER_SNAKE reason, stable across releases (ErrorInfo.reason). */
  readonly reason: string;
  readonly metadata: Record<string, string>;
  readonly fieldViolations: FieldViolation[];

  constructor(kind: ErrorKind, reason: string, message: string, options: CfgdErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CfgdError';
    this.kind = kind;
    this.reason = reason;
    this.metadata = options.metadata ?? {};
    this.fieldViolations = options.fieldViolations ?? [];
  }
}

/** An INVALID_ARGUMENT error about one request field. */
export function invalidField(field: string, reason: string, description: string): CfgdError {
  return new CfgdError('invalid-argument', reason, `${field}: ${description}`, {
    metadata: { field },
    fieldViolations: [{ field, description }],
  });
}
