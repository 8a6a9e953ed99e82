import type { Logger } from 'pino';
import type { ConfigStore } from '../store/store.js';

/** Whether this node can serve: the gRPC health service's two states that cfgd uses. */
export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/** Whether this node serves, and each change of it. */
export interface ServingSource {
  readonly status: ServingStatus;
  onChange(listener: (status: ServingStatus) => void): () => void;
}

export interface HealthMonitorDeps {
  readonly store: Pick<ConfigStore, 'ping'>;
  /** How often the store is probed. */
  readonly intervalMs: number;
  readonly log: Logger;
}

/**
 * Whether this node serves, for the gRPC health service and `/readyz`:
 * SERVING while the store answers its probe, NOT_SERVING while it does not
 * (RethinkDB unreachable) and, for good, once shutdown begins. The store is
 * probed every `intervalMs`, one probe at a time; listeners hear each change.
 */
export class HealthMonitor implements ServingSource {
  private current: ServingStatus = 'NOT_SERVING';
  private readonly listeners = new Set<(status: ServingStatus) => void>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** False until the first probe has answered or failed: the start is not a change worth a log line. */
  private probed = false;

  constructor(private readonly deps: HealthMonitorDeps) {}

  get status(): ServingStatus {
    return this.current;
  }

  /** Probes once (so the node starts with a known status), then every `intervalMs` until `stop`. */
  async start(): Promise<void> {
    await this.probe();
    this.schedule();
  }

  /** Calls `listener` with every later change of status; returns what stops it. */
  onChange(listener: (status: ServingStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** NOT_SERVING from now on (shutdown has begun); probing stops. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.set('NOT_SERVING');
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.probe().then(() => this.schedule());
    }, this.deps.intervalMs);
    // Probing alone must not keep the process alive.
    this.timer.unref();
  }

  private async probe(): Promise<void> {
    let answered: boolean;
    try {
      await this.deps.store.ping();
      answered = true;
    } catch (error: unknown) {
      answered = false;
      if (this.current === 'SERVING' && !this.stopped) {
        this.deps.log.warn({ err: error }, 'the store does not answer: this node is not serving');
      }
    }
    if (this.stopped) return;
    if (answered && this.current === 'NOT_SERVING' && this.probed) {
      this.deps.log.info('the store answers again: this node is serving');
    }
    if (!answered && !this.probed) this.deps.log.warn('the store does not answer: this node is not serving');
    this.probed = true;
    this.set(answered ? 'SERVING' : 'NOT_SERVING');
  }

  private set(status: ServingStatus): void {
    if (status === this.current) return;
    this.current = status;
    for (const listener of this.listeners) listener(status);
  }
}
