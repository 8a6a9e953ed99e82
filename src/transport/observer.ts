import type { CfgdError } from '../domain/index.js';
import type { CallInfo } from './pipeline.js';

/** One operation a transport serves (an RPC, a REST route), as observers see it. */
export interface ObservedOperation {
  readonly transport: 'grpc' | 'rest';
  /** gRPC: the RPC's full name (`cfgd.v1.ConfigService/Put`); REST: the HTTP method. */
  readonly method: string;
  /** gRPC: the RPC's full name again; REST: the path template, or `unmatched` for requests no route takes. */
  readonly route: string;
  /** True when it answers with a stream (gRPC server stream, SSE). */
  readonly streaming: boolean;
}

/** Records the calls of one operation. */
export interface OperationObserver {
  /** A call began. */
  started(): void;
  /**
   * A call is over, `seconds` after it began (a stream: when it ended), with
   * `status`: the gRPC code on gRPC, the HTTP status on REST (499 when the
   * client left before the answer). `info` is undefined for a request no route
   * took; `error`, the error it ended with, if any.
   */
  finished(status: number, seconds: number, info: CallInfo | undefined, error: CfgdError | undefined): void;
}

/**
 * What sees every call both transports answer (metrics, the access log). The
 * transports ask for each operation's observer once, when they start, so that
 * a call costs no lookup.
 */
export interface CallObserver {
  operation(operation: ObservedOperation): OperationObserver;
}

/** One observer telling each of `observers`; undefined when there is none (the transports then measure nothing). */
export function combineObservers(observers: readonly CallObserver[]): CallObserver | undefined {
  if (observers.length <= 1) return observers[0];
  return {
    operation(operation) {
      const each = observers.map((observer) => observer.operation(operation));
      return {
        started() {
          for (const observer of each) observer.started();
        },
        finished(status, seconds, info, error) {
          for (const observer of each) observer.finished(status, seconds, info, error);
        },
      };
    },
  };
}

/** Longest `x-request-id` taken from a client; a longer one (or one with other characters) is replaced. */
const MAX_REQUEST_ID = 128;

/**
 * The client's `x-request-id` if cfgd may use it as it is (1 to 128 visible
 * ASCII characters: it goes into log lines and back to the client), else
 * undefined and the call gets one of its own.
 */
export function acceptedRequestId(value: string | undefined): string | undefined {
  if (value === undefined || value.length === 0 || value.length > MAX_REQUEST_ID) return undefined;
  return /^[\x21-\x7e]+$/.test(value) ? value : undefined;
}
