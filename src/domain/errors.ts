import type { ErrorKind, ErrorReason, KindAndReason, ReasonOf } from './error-reasons.js';

/**
 * The domain's error vocabulary. The core throws `CfgdError`; transports map its
 * `kind` to a wire status once, in `src/transport/status.ts`. Its reason is one of
 * the catalog (`error-reasons.ts`), with the kind the catalog gives it.
 */
export type { ErrorKind, ErrorReason, KindAndReason, KindOf, ReasonOf } from './error-reasons.js';
export { ERROR_REASONS } from './error-reasons.js';

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
  /** UPPER_SNAKE reason from the catalog, stable across releases (ErrorInfo.reason). */
  readonly reason: ErrorReason;
  readonly metadata: Record<string, string>;
  readonly fieldViolations: FieldViolation[];

  /** `kind` and `reason` as the catalog pairs them (the compiler checks the pair). */
  constructor(
    ...[kind, reason, message, options = {}]: [...KindAndReason, message: string, options?: CfgdErrorOptions]
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CfgdError';
    this.kind = kind;
    this.reason = reason;
    this.metadata = options.metadata ?? {};
    this.fieldViolations = options.fieldViolations ?? [];
  }
}

/** An INVALID_ARGUMENT error about one request field. */
export function invalidField(field: string, reason: ReasonOf<'invalid-argument'>, description: string): CfgdError {
  // Every reason of ReasonOf<'invalid-argument'> pairs with this kind; the compiler cannot see a union pair.
  const pair = ['invalid-argument', reason] as KindAndReason;
  return new CfgdError(...pair, `${field}: ${description}`, {
    metadata: { field },
    fieldViolations: [{ field, description }],
  });
}
