/** Something written to with backpressure: a grpc-js server stream or an HTTP response. */
interface Drainable {
  on(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

/** Resolves when `stream` can take more data; rejects with the signal's reason when it aborts first. */
export function drained(stream: Drainable, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      stream.off('drain', onDrain);
      signal.removeEventListener('abort', onAbort);
    };
    const onDrain = (): void => {
      done();
      resolve();
    };
    const onAbort = (): void => {
      done();
      reject(signal.reason);
    };
    if (signal.aborted) return onAbort();
    stream.on('drain', onDrain);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
