import rethinkdb from 'rethinkdb';
import { CfgdError } from '../../domain/index.js';

/**
 * What a failed query tells about its effect on the database:
 * - `failed`: it was not performed (never sent, or the server says it definitely failed);
 * - `indeterminate`: it may or may not have been performed (the server lost a replica mid-write,
 *   the connection broke or the timeout passed after it was sent).
 * Reads treat both alike; a write resolves an indeterminate insert by reading its key back.
 */
export type FailureOutcome = 'failed' | 'indeterminate';

/** UNAVAILABLE from the database, with what is known of the query's effect. */
export class DatabaseUnavailableError extends CfgdError {
  constructor(
    readonly outcome: FailureOutcome,
    message: string,
    cause?: unknown,
  ) {
    super('unavailable', 'DATABASE_UNAVAILABLE', `the database is unavailable: ${message}`, { cause });
  }
}

export function isUnavailable(error: unknown): error is CfgdError {
  return error instanceof CfgdError && error.kind === 'unavailable';
}

/** The driver's error classes (its typings do not declare them). */
interface DriverErrors {
  readonly ReqlError: ErrorClass;
  readonly ReqlDriverError: ErrorClass;
  readonly ReqlAuthError: ErrorClass;
  readonly ReqlTimeoutError: ErrorClass;
  readonly ReqlRuntimeError: ErrorClass;
  readonly ReqlAvailabilityError: ErrorClass;
  readonly ReqlOpFailedError: ErrorClass;
  readonly ReqlOpIndeterminateError: ErrorClass;
  readonly ReqlInternalError: ErrorClass;
}
type ErrorClass = abstract new (...args: never[]) => Error;

export const DRIVER_ERRORS = (rethinkdb as unknown as { Error: DriverErrors }).Error;

/** Messages of failures that are about reaching servers, not about the query. */
const CONNECTION_TROUBLE =
  /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|socket hang up|Could not connect/i;
/** ReqlInternalError messages that report unreachable servers rather than a bug. */
const SERVER_TROUBLE = /server|replica|accessible|reachable|lost contact|not available/i;

/**
 * Classifies an error of a query: a `DatabaseUnavailableError` (UNAVAILABLE,
 * with its outcome) for every failure of availability, the error itself for
 * anything else (a bug, a permission problem: INTERNAL, logged). `sent` says
 * whether the query had been handed to the connection when it failed: a
 * failure before that never has an effect. Classes are matched with
 * `instanceof`, so subclasses (ReqlOpIndeterminateError is a
 * ReqlAvailabilityError) are recognised.
 */
export function classifyError(error: unknown, what: string, sent: boolean): unknown {
  if (error instanceof CfgdError) return error;
  const message = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
  const unavailable = (outcome: FailureOutcome): DatabaseUnavailableError =>
    new DatabaseUnavailableError(sent ? outcome : 'failed', `${what}: ${message}`, error);
  const E = DRIVER_ERRORS;
  if (error instanceof E.ReqlOpFailedError) return unavailable('failed');
  if (error instanceof E.ReqlOpIndeterminateError) return unavailable('indeterminate');
  // Any other availability error: assume the worst about its effect.
  if (error instanceof E.ReqlAvailabilityError) return unavailable('indeterminate');
  // Connecting failed (refused, handshake, credentials, connect timeout): nothing was sent.
  if (error instanceof E.ReqlAuthError || error instanceof E.ReqlTimeoutError) return unavailable('failed');
  if (error instanceof E.ReqlDriverError)
    return unavailable(CONNECTION_TROUBLE.test(message) ? 'indeterminate' : 'failed');
  if (error instanceof E.ReqlInternalError) return SERVER_TROUBLE.test(message) ? unavailable('indeterminate') : error;
  // The driver fails queries in flight with a plain ReqlRuntimeError "Connection is closed.".
  if (error instanceof E.ReqlRuntimeError && !isRuntimeSubclass(error)) {
    return CONNECTION_TROUBLE.test(message) ? unavailable('indeterminate') : error;
  }
  if (!(error instanceof E.ReqlError) && CONNECTION_TROUBLE.test(message)) return unavailable('indeterminate');
  return error;
}

/** True for the specific runtime errors (query logic, non-existence …), which are about the query. */
function isRuntimeSubclass(error: Error): boolean {
  return Object.getPrototypeOf(error) !== DRIVER_ERRORS.ReqlRuntimeError.prototype;
}

/** An UNAVAILABLE error of the backend itself (a timeout, a closed store). */
export function unavailable(outcome: FailureOutcome, message: string, cause?: unknown): DatabaseUnavailableError {
  return new DatabaseUnavailableError(outcome, message, cause);
}
