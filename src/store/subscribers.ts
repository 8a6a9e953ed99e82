import type { ConfigKey } from '../domain/index.js';
import type { Unsubscribe } from './store.js';

/** The wake-up listeners of a store, by config; shared by the backends. */
export class Subscribers {
  private readonly byKey = new Map<string, Set<() => void>>();

  /** Adds a listener; the same function added twice is two subscriptions. */
  add(key: ConfigKey, wake: () => void): Unsubscribe {
    const id = keyId(key);
    let set = this.byKey.get(id);
    if (set === undefined) this.byKey.set(id, (set = new Set()));
    const listener = (): void => wake();
    set.add(listener);
    return () => {
      const current = this.byKey.get(id);
      if (current?.delete(listener) && current.size === 0) this.byKey.delete(id);
    };
  }

  /** Wakes the listeners of one config (by `user_id/config_name`, or a key). */
  wake(key: ConfigKey | string): void {
    const set = this.byKey.get(typeof key === 'string' ? key : keyId(key));
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        listener();
      } catch {
        // A wake-up is a hint; a failing listener must not fail a committed write or stop a feed.
      }
    }
  }

  wakeAll(): void {
    for (const id of [...this.byKey.keys()]) this.wake(id);
  }

  get size(): number {
    let count = 0;
    for (const set of this.byKey.values()) count += set.size;
    return count;
  }

  clear(): void {
    this.byKey.clear();
  }
}

/** Names never contain '/', so the pair maps to one string unambiguously. */
export function keyId(key: ConfigKey): string {
  return `${key.userId}/${key.configName}`;
}
