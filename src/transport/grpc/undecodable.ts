import { CfgdError } from '../../domain/index.js';

const UNDECODABLE = Symbol('undecodable request');

interface Undecodable {
  readonly [UNDECODABLE]: unknown;
}

interface MethodDefinition {
  readonly requestDeserialize: (bytes: Buffer) => unknown;
}

/**
 * grpc-js answers a request it cannot decode with INTERNAL "Error deserializing
 * request". Values nested past the protobuf decoder's recursion limit are a
 * client mistake, so decoding failures are handed to the handler as a marker
 * instead, and `throwIfUndecodable` turns them into INVALID_ARGUMENT.
 */
export function tolerantDecoding<D extends Record<string, MethodDefinition>>(definition: D): D {
  const wrapped: Record<string, MethodDefinition> = {};
  for (const [name, method] of Object.entries(definition)) {
    wrapped[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return method.requestDeserialize(bytes);
        } catch (error: unknown) {
          return { [UNDECODABLE]: error } satisfies Undecodable;
        }
      },
    };
  }
  return wrapped as D;
}

export function throwIfUndecodable(request: unknown): void {
  if (typeof request === 'object' && request !== null && UNDECODABLE in request) {
    const cause = (request as Undecodable)[UNDECODABLE];
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new CfgdError('invalid-argument', 'REQUEST_UNDECODABLE', `the request could not be decoded: ${why}`, {
      cause,
    });
  }
}

/** A grpc-js method definition, as far as wrapping a library's service needs it. */
interface LibraryMethod extends MethodDefinition {
  readonly requestStream: boolean;
  readonly originalName?: string;
}

type Handler = (call: GrpcCallLike, callback?: (error: unknown) => void) => void;

interface GrpcCallLike {
  readonly request?: unknown;
  emit(event: string | symbol, ...args: unknown[]): boolean;
}

/**
 * A library's service (health, reflection) with cfgd's answer to an
 * undecodable request: INVALID_ARGUMENT, as `toError` words it, instead of
 * grpc-js's INTERNAL. A unary or server-streaming handler does not run; a
 * stream of requests ends at the undecodable one.
 */
export function tolerantService(
  definition: Readonly<Record<string, LibraryMethod>>,
  handlers: Readonly<Record<string, unknown>>,
  toError: (error: unknown) => unknown,
): { definition: Record<string, LibraryMethod>; handlers: Record<string, Handler> } {
  const wrapped: Record<string, Handler> = {};
  for (const [name, method] of Object.entries(definition)) {
    // grpc-js looks a handler up by the definition's key or its original (proto) name.
    const handler = (handlers[name] ?? handlers[method.originalName ?? '']) as Handler | undefined;
    if (handler === undefined) continue;
    wrapped[name] = method.requestStream
      ? (call) => {
          const emit = call.emit.bind(call);
          call.emit = (event, ...args) => {
            if (event === 'data' && isUndecodable(args[0])) return emit('error', toError(undecodableError(args[0])));
            return emit(event, ...args);
          };
          handler(call);
        }
      : (call, callback) => {
          if (!isUndecodable(call.request)) return handler(call, callback);
          const error = toError(undecodableError(call.request));
          if (callback === undefined) call.emit('error', error);
          else callback(error);
        };
  }
  return { definition: tolerantDecoding(definition), handlers: wrapped };
}

function isUndecodable(request: unknown): request is Undecodable {
  return typeof request === 'object' && request !== null && UNDECODABLE in request;
}

function undecodableError(request: Undecodable): CfgdError {
  try {
    throwIfUndecodable(request);
  } catch (error: unknown) {
    if (error instanceof CfgdError) return error;
  }
  throw new Error('not an undecodable request');
}
