/**
 * A sticky, level-triggered wake-up: `notify` sets a flag that the next `wait`
 * consumes, so a notification that arrives while nobody waits is not lost.
 */
export class WakeSignal {
  private pending = false;
  private resolve: (() => void) | undefined;

  notify(): void {
    if (this.resolve !== undefined) {
      const resolve = this.resolve;
      this.resolve = undefined;
      resolve();
    } else {
      this.pending = true;
    }
  }

  /**
   * Resolves at the next notification (at once if one is pending), or after
   * `timeoutMs` when given; rejects when `signal` aborts. Without a signal or a
   * timeout it allocates only the promise: the hot path of every watch stream.
   */
  wait(signal?: AbortSignal, timeoutMs?: number): Promise<void> {
    signal?.throwIfAborted();
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    if (signal === undefined && timeoutMs === undefined) {
      return new Promise<void>((resolve) => {
        this.resolve = resolve;
      });
    }
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (): void => {
        this.resolve = undefined;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        settle();
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          settle();
          resolve();
        }, timeoutMs);
      }
      this.resolve = () => {
        settle();
        resolve();
      };
    });
  }
}
