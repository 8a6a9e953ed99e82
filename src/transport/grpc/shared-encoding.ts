interface MethodDefinition {
  readonly responseStream: boolean;
  readonly responseSerialize: (message: never) => Buffer;
}

/**
 * Streamed responses are often one message object sent to many streams (a
 * watch event goes to every watcher of a config). For server-streaming
 * methods, the encoding of each message object is kept while the object
 * lives, so it is serialized once however many streams send it.
 */
export function sharedResponseEncoding<D extends Record<string, MethodDefinition>>(definition: D): D {
  const wrapped: Record<string, MethodDefinition> = {};
  for (const [name, method] of Object.entries(definition)) {
    if (!method.responseStream) {
      wrapped[name] = method;
      continue;
    }
    const encodings = new WeakMap<object, Buffer>();
    const serialize = method.responseSerialize as (message: object) => Buffer;
    wrapped[name] = {
      ...method,
      responseSerialize: (message: object): Buffer => {
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
