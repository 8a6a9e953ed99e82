import type { ConfigKey } from '../domain/index.js';
import type { SubscriptionScope, Unsubscribe, Wake } from './store.js';

interface Listener {
  /** Undefined: every config of the user. */
  readonly configName: string | undefined;
  readonly wake: Wake;
}

/** The wake-up listeners of a store, by user; shared by the backends. */
export class Subscribers {
  private readonly byUser = new Map<string, Set<Listener>>();
  private count = 0;

  /** Adds a listener; the same function added twice is two subscriptions. */
  add(scope: SubscriptionScope, wake: Wake): Unsubscribe {
    let set = this.byUser.get(scope.userId);
    if (set === undefined) this.byUser.set(scope.userId, (set = new Set()));
    const listener: Listener = { configName: scope.configName, wake };
    set.add(listener);
    this.count++;
    return () => {
      const current = this.byUser.get(scope.userId);
      if (!current?.delete(listener)) return;
      this.count--;
      if (current.size === 0) this.byUser.delete(scope.userId);
    };
  }

  /** Wakes the listeners whose scope covers this config. */
  wake(userId: string, configName: string): void {
    const set = this.byUser.get(userId);
    if (set === undefined) return;
    for (const listener of [...set]) {
      if (listener.configName === undefined || listener.configName === configName) call(listener, configName);
    }
  }

  /** Wakes every listener with "anything may have changed". */
  wakeAll(): void {
    for (const set of [...this.byUser.values()]) {
      for (const listener of [...set]) call(listener, undefined);
    }
  }

  get size(): number {
    return this.count;
  }

  clear(): void {
    this.byUser.clear();
    this.count = 0;
  }
}

function call(listener: Listener, configName: string | undefined): void {
  try {
    listener.wake(configName ?? listener.configName);
  } catch {
    // A wake-up is a hint; a failing listener must not fail a committed write or stop a feed.
  }
}

/** Names never contain '/', so the pair maps to one string unambiguously. */
export function keyId(key: ConfigKey): string {
  return `${key.userId}/${key.configName}`;
}
