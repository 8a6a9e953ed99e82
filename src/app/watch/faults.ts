import { CfgdError } from '../../domain/index.js';

/**
 * Where the watch module reports server faults (a broken invariant). Pino's
 * `Logger` fits it, so the composition root can pass `log.child({ component: 'watch' })`.
 */
export interface WatchLog {
  error(fields: object, message: string): void;
}

/**
 * Reports a fault that ends one stream, every stream of a channel, or an
 * open: transports send a `CfgdError` to the client as it is and log only
 * other errors, so a fault of the hub's own is logged here, once. Without a
 * log it becomes a process warning, so that it is never silent.
 */
export function reportFault(log: WatchLog | undefined, error: CfgdError, fields: Record<string, unknown> = {}): void {
  if (log === undefined) process.emitWarning(error);
  else log.error({ ...fields, err: error, reason: error.reason }, `watch fault: ${error.message}`);
}

/** Whether `error` is one of the hub's own faults (as opposed to a store error or a cancellation). */
export function isInternal(error: unknown): error is CfgdError {
  return error instanceof CfgdError && error.kind === 'internal';
}

/**
 * `value` as an Error: what ends a stream is thrown to its reader, and only
 * errors are thrown. Anything else (no store throws it) is wrapped, kept as the cause.
 */
export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value), { cause: value });
}
