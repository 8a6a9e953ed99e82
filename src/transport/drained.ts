/** Something written to with backpressure: a grpc-js server stream or an HTTP response. */
interface Drainable {
  on(event: 'drain', listener: () => void): unknown;
  off(event: 'drain', listener: () => void): unknown;
}

/** Resolves when `stream` can take more data; rejects with a signal's reason when one aborts first. */
export function drained(stream: Drainable, ...signals: AbortSignal[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      stream.off('drain', onDrain);
      for (const signal of signals) signal.removeEventListener('abort', onAbort);
    };
    const onDrain = (): void => {
      done();
      resolve();
    };
    const onAbort = (): void => {
      done();
      reject(signals.find((signal) => signal.aborted)?.reason);
    };
    if (signals.some((signal) => signal.aborted)) return onAbort();
    stream.on('drain', onDrain);
    for (const signal of signals) signal.addEventListener('abort', onAbort, { once: true });
  });
}
