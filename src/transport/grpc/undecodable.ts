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
