import type { Logger } from 'pino';
import type { ConfigKey } from '../domain/index.js';
import type { ConfigStore } from '../store/store.js';

export interface PrunerDeps {
  readonly store: ConfigStore;
  /** Versions kept per config that sets no limit of its own; 0 keeps every version. */
  readonly defaultMaxVersions: number;
  readonly log: Logger;
}

/**
 * Retention in the background: after a write commits a version, the config
 * keeps its newest `max` versions (its own limit, else the server's) and the
 * older ones are pruned — never while the write waits, one prune per config
 * at a time (writes that come meanwhile are folded into the next one). Each
 * node prunes the configs written through it; a prune is safe to repeat.
 */
export class Pruner {
  /** The latest version written of each config with a prune to run, by config id. */
  private readonly pending = new Map<string, { key: ConfigKey; version: number }>();
  private readonly active = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly deps: PrunerDeps) {}

  /** A write of `key` committed `version`: prune it soon if it keeps more than its limit. */
  written(key: ConfigKey, version: number): void {
    if (this.closed) return;
    const id = `${key.userId}/${key.configName}`;
    const known = this.pending.get(id);
    if (known === undefined || known.version < version) this.pending.set(id, { key, version });
    if (this.active.has(id)) return;
    this.active.add(id);
    const task = this.drain(id).finally(() => {
      this.active.delete(id);
      this.running.delete(task);
    });
    this.running.add(task);
  }

  /** Stops taking work and waits for the prunes under way. */
  async close(): Promise<void> {
    this.closed = true;
    this.pending.clear();
    await Promise.allSettled([...this.running]);
  }

  private async drain(id: string): Promise<void> {
    // After the write's answer: a prune never delays it.
    await new Promise((resolve) => setImmediate(resolve));
    for (let next = this.pending.get(id); next !== undefined && !this.closed; next = this.pending.get(id)) {
      this.pending.delete(id);
      try {
        await this.pruneTo(next.key, next.version);
      } catch (error: unknown) {
        // The next write retries; nothing is lost by a prune that did not happen.
        this.deps.log.warn({ err: error, config: id }, 'could not prune old versions');
      }
    }
  }

  private async pruneTo(key: ConfigKey, version: number): Promise<void> {
    const retention = await this.deps.store.retention(key);
    if (retention === undefined) return;
    const max = retention.maxVersions ?? this.deps.defaultMaxVersions;
    if (max <= 0) return;
    const floor = version - max + 1;
    if (floor > retention.firstKept) await this.deps.store.prune(key, floor);
  }
}
