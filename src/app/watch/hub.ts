import type { ConfigStore } from '../../store/store.js';
import { Channel } from './channel.js';
import { isInternal, reportFault, type WatchLog } from './faults.js';
import {
  planStart,
  scopeName,
  startsAhead,
  type StartPlan,
  type StoreBehind,
  type WatchScope,
  type WatchStart,
} from './start-plan.js';
import { Watcher, type WatcherHooks, type WatchStream } from './watcher.js';
import type { VersionEvent } from './watch-event.js';

/** Reads of the store at once when a user watch's known versions are checked against it. */
const STORE_READS_AT_ONCE = 16;

export interface WatchHubOptions {
  readonly store: ConfigStore;
  /** Most events one stream may have waiting for its reader before it ends with RESOURCE_EXHAUSTED. */
  readonly maxQueuedEvents: number;
  /** A stream that sent nothing for this long gets a PROGRESS event; 0 sends none. */
  readonly heartbeatMs: number;
  /** How long to wait before reading again from a store that was unavailable. */
  readonly retryMs?: number;
  /** Where broken invariants (server faults) are logged; without it they become process warnings. */
  readonly log?: WatchLog;
}

export interface WatchHubStats {
  /** Open watch streams. */
  readonly watches: number;
  /** Shared channels, each holding one store subscription. */
  readonly channels: number;
  /** Events waiting for their readers, over all streams. */
  readonly queuedEvents: number;
  /** Streams ended with RESOURCE_EXHAUSTED since start. */
  readonly overflowed: number;
}

/**
 * Fans the versions committed in the store out to watch streams. Watchers of
 * the same scope share one channel: one store subscription, one read of each
 * new version and one event object per version (so transports can encode it
 * once). Each stream has a bounded queue: a reader that does not keep up is
 * ended with RESOURCE_EXHAUSTED, and the others are not slowed down.
 *
 * Versions reach each stream in order and exactly once per config: a channel
 * reads every version after the last one it dispatched (checked to follow it),
 * a stream's start is planned against the channel's latest versions in the
 * same turn as it joins, and a stream takes a dispatched version only if it
 * directly follows the last one it holds.
 *
 * The hub keeps the index of channels by scope, the set of open streams (for
 * stats) and the heartbeat timer; each channel decides its own lifetime.
 */
export class WatchHub {
  private readonly channels = new Map<string, Channel>();
  private readonly watchers = new Set<Watcher>();
  private overflowed = 0;
  private ticker: NodeJS.Timeout | undefined;
  private readonly hooks: WatcherHooks = {
    onClose: (closed) => {
      this.watchers.delete(closed);
      if (this.watchers.size === 0) this.stopTicker();
    },
    onOverflow: () => this.overflowed++,
  };

  constructor(private readonly options: WatchHubOptions) {}

  stats(): WatchHubStats {
    let queuedEvents = 0;
    for (const watcher of this.watchers) queuedEvents += watcher.queued;
    return { watches: this.watchers.size, channels: this.channels.size, queuedEvents, overflowed: this.overflowed };
  }

  /**
   * Opens a stream. Resolves once the stream is registered with its channel
   * (so every later commit reaches it); rejects when the store cannot be
   * subscribed to or read, when `signal` aborts first, or (INTERNAL,
   * WATCH_START_MISMATCH) when `start` does not fit `scope`. The stream then
   * ends by throwing `signal.reason` when the signal aborts.
   */
  async open(scope: WatchScope, start: WatchStart, signal: AbortSignal): Promise<WatchStream> {
    const channel = this.channelFor(scope);
    channel.retain();
    try {
      await channel.ready;
      signal.throwIfAborted();
      channel.throwIfClosed();
      const behind = await this.storeBehind(scope, startsAhead(scope, start, channel.current));
      signal.throwIfAborted();
      channel.throwIfClosed();
      // From here to `join`, one turn: no version can be dispatched between the plan and the join.
      const plan = this.plan(scope, start, channel.current, behind);
      const watcher = new Watcher(channel, plan, signal, this.options, this.hooks);
      channel.join(watcher);
      this.watchers.add(watcher);
      this.startTicker();
      return watcher;
    } catch (error: unknown) {
      channel.release();
      throw error;
    }
  }

  private channelFor(scope: WatchScope): Channel {
    const id = scopeId(scope);
    let channel = this.channels.get(id);
    if (channel === undefined) {
      const created = new Channel(scope, this.options, () => {
        if (this.channels.get(id) === created) this.channels.delete(id);
      });
      this.channels.set(id, created);
      channel = created;
    }
    return channel;
  }

  /**
   * Of the starts ahead of the channel, those the store itself has no such
   * version of, with the store's latest version (read after the channel's, so
   * a version committed but not yet dispatched is found here). Usually there
   * are none to read: a resume starts at or below what the channel has.
   */
  private async storeBehind(scope: WatchScope, ahead: readonly [string, number][]): Promise<StoreBehind> {
    const behind = new Map<string, VersionEvent | undefined>();
    for (let i = 0; i < ahead.length; i += STORE_READS_AT_ONCE) {
      const reads = ahead.slice(i, i + STORE_READS_AT_ONCE).map(async ([configName, after]) => {
        const latest = await this.options.store.latest({ userId: scope.userId, configName });
        if ((latest?.version ?? 0) < after) {
          behind.set(configName, latest === undefined ? undefined : { kind: 'version', version: latest });
        }
      });
      await Promise.all(reads);
    }
    return behind;
  }

  private plan(
    scope: WatchScope,
    start: WatchStart,
    current: ReadonlyMap<string, VersionEvent>,
    behind: StoreBehind,
  ): StartPlan {
    try {
      return planStart(scope, start, current, behind);
    } catch (error: unknown) {
      if (isInternal(error)) reportFault(this.options.log, error, { scope: scopeName(scope) });
      throw error;
    }
  }

  private startTicker(): void {
    if (this.ticker !== undefined || this.options.heartbeatMs <= 0) return;
    this.ticker = setInterval(() => {
      for (const watcher of this.watchers) watcher.tick();
    }, this.options.heartbeatMs);
    this.ticker.unref();
  }

  private stopTicker(): void {
    clearInterval(this.ticker);
    this.ticker = undefined;
  }
}

function scopeId(scope: WatchScope): string {
  return scope.configName === undefined ? `${scope.userId}/` : `${scope.userId}/${scope.configName}`;
}
