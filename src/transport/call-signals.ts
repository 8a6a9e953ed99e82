/**
 * Abort controllers for running calls that the server's shutdown signal
 * aborts all at once. One listener on the shutdown signal serves every call:
 * with thousands of open watch streams, a listener (or an `AbortSignal.any`)
 * per call on the one shared signal costs time on every open and close.
 */
export class CallSignals {
  private readonly running = new Set<AbortController>();

  constructor(private readonly shutdown: AbortSignal) {
    shutdown.addEventListener(
      'abort',
      () => {
        const running = [...this.running];
        this.running.clear();
        for (const controller of running) controller.abort(shutdown.reason);
      },
      { once: true },
    );
  }

  /** A controller that shutdown aborts until `release` is called (when the call ends). */
  open(): { readonly controller: AbortController; release(): void } {
    const controller = new AbortController();
    if (this.shutdown.aborted) controller.abort(this.shutdown.reason);
    else this.running.add(controller);
    return { controller, release: () => this.running.delete(controller) };
  }
}
