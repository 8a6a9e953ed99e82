/**
 * Waits `ms`, or less when `signal` aborts first. The abort listener is removed
 * whichever comes first, so a loop that waits again and again on one long-lived
 * signal (a watch's backoff, an agent asking again after a refusal) adds none.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
