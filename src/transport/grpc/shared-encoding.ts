import { isReused } from '../reused.js';

interface MethodDefinition {
  readonly responseStream: boolean;
  readonly responseSerialize: (message: never) => Buffer;
}

/**
 * Streamed responses are often one message object sent to many streams (a
 * watch event goes to every watcher of a config), and a unary method may
 * answer many calls with one message object (see `markReused`). The encoding
 * of such a message object is kept while the object lives, so it is
 * serialized once however many calls send it.
 */
export function sharedResponseEncoding<D extends Record<string, MethodDefinition>>(definition: D): D {
  const wrapped: Record<string, MethodDefinition> = {};
  for (const [name, method] of Object.entries(definition)) {
    const encodings = new WeakMap<object, Buffer>();
    const serialize = method.responseSerialize as (message: object) => Buffer;
    // Unary responses are mostly built for one call: only those marked as reused are kept.
    const keep = method.responseStream ? (): boolean => true : isReused;
    wrapped[name] = {
      ...method,
      responseSerialize: (message: object): Buffer => {
        if (!keep(message)) return serialize(message);
        let bytes = encodings.get(message);
        if (bytes === undefined) {
          bytes = serialize(message);
          encodings.set(message, bytes);
        }
        return bytes;
      },
    };
  }
  return wrapped as D;
}
