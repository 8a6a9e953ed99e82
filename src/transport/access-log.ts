import { status as GrpcStatus } from '@grpc/grpc-js';
import type { LevelWithSilent, Logger } from 'pino';
import type { CallObserver, ObservedOperation, OperationObserver } from './observer.js';

export interface AccessLogOptions {
  readonly log: Logger;
  /** The level of the lines. */
  readonly level: LevelWithSilent;
  /** Share of successful calls logged (0 to 1); failed calls are always logged. */
  readonly sample: number;
  /** Where sampling draws from (tests fix it). */
  readonly random?: () => number;
}

/**
 * One JSON log line per call, when it is over: transport, method, route
 * template, status, duration, principal and request id (never a value, a
 * token or a path's names). Undefined when `level` is below the logger's
 * level: no call then pays for it.
 */
export function accessLog({ log, level, sample, random = Math.random }: AccessLogOptions): CallObserver | undefined {
  if (level === 'silent' || !log.isLevelEnabled(level) || sample < 0) return undefined;
  const write = log[level].bind(log);
  return {
    operation(operation: ObservedOperation): OperationObserver {
      const grpc = operation.transport === 'grpc';
      return {
        started() {},
        finished(status, seconds, info, error) {
          const failed = grpc ? status !== (GrpcStatus.OK as number) : status >= 400;
          if (!failed && (sample === 0 || (sample < 1 && random() >= sample))) return;
          write(
            {
              transport: operation.transport,
              method: operation.method,
              route: operation.route,
              // REST: the operation the route runs (`cfgd.v1.ConfigService/Put`, a legacy route …).
              ...(grpc || info === undefined ? {} : { operation: info.method }),
              ...(grpc ? { code: GrpcStatus[status] ?? String(status) } : { status }),
              durationMs: Math.round(seconds * 1e6) / 1e3,
              principal: info?.principal,
              requestId: info?.requestId,
              peer: info?.peer,
              reason: error?.reason,
            },
            'request',
          );
        },
      };
    },
  };
}
