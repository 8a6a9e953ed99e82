import { CfgdError, type ConfigKey, type ConfigVersion } from '../domain/index.js';
import type { ConfigStore, Unsubscribe } from '../store/store.js';
import { WakeSignal } from './wake-signal.js';

/** One message of a watch stream, before any transport encodes it. */
export type WatchEvent =
  | { readonly kind: 'version'; readonly version: ConfigVersion }
  | { readonly kind: 'initial-state-complete' }
  | { readonly kind: 'progress' };

export const INITIAL_STATE_COMPLETE: WatchEvent = Object.freeze({ kind: 'initial-state-complete' });
export const PROGRESS: WatchEvent = Object.freeze({ kind: 'progress' });

/** What a watch covers: one config, or (without `configName`) every config of a user. */
export interface WatchScope {
  readonly userId: string;
  readonly configName?: string | undefined;
}

/** Where one stream starts. */
export type WatchStart =
  /** A config watch: the current version first (undefined), or every version after this one. */
  | { readonly scope: 'config'; readonly after: number | undefined }
  /** A user watch: the versions the client already holds, by config name. */
  | { readonly scope: 'user'; readonly known: ReadonlyMap<string, number> };

/** A stream of watch events; `close` releases it (idempotent). */
export interface WatchStream extends AsyncIterable<WatchEvent> {
  /**
   * Aborts, with the error the stream ends with, when the stream ends on the
   * server's side (its reader fell too far behind), so that a transport waiting
   * for its client to drain stops waiting.
   */
  readonly ended: AbortSignal;
  close(): void;
}

export interface WatchHubOptions {
  readonly store: ConfigStore;
  /** Most events one stream may have waiting for its reader before it ends with RESOURCE_EXHAUSTED. */
  readonly maxQueuedEvents: number;
  /** A stream that sent nothing for this long gets a PROGRESS event; 0 sends none. */
  readonly heartbeatMs: number;
  /** How long to wait before reading again from a store that was unavailable. */
  readonly retryMs?: number;
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

/** How many versions one store read takes while catching up. */
const READ_BATCH = 256;
const DEFAULT_RETRY_MS = 1000;

/**
 * Fans the versions committed in the store out to watch streams. Watchers of
 * the same scope share one channel: one store subscription, one read of each
 * new version and one event object per version (so transports can encode it
 * once). Each stream has a bounded queue: a reader that does not keep up is
 * ended with RESOURCE_EXHAUSTED, and the others are not slowed down.
 *
 * Versions reach each stream in order and exactly once per config: a channel
 * reads every version after the last one it dispatched, and a stream takes a
 * dispatched version only if it directly follows the last one it holds.
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
   * subscribed to or read, or when `signal` aborts first. The stream then ends
   * by throwing `signal.reason` when the signal aborts.
   */
  async open(scope: WatchScope, start: WatchStart, signal: AbortSignal): Promise<WatchStream> {
    const id = scopeId(scope);
    let channel = this.channels.get(id);
    if (channel === undefined) {
      const created = new Channel(scope, this.options, () => {
        if (this.channels.get(id) === created) this.channels.delete(id);
      });
      this.channels.set(id, created);
      channel = created;
    }
    channel.opening++;
    try {
      await channel.ready;
      signal.throwIfAborted();
    } catch (error: unknown) {
      channel.opening--;
      channel.releaseIfIdle();
      throw error;
    }
    channel.opening--;
    const watcher = new Watcher(channel, start, signal, this.options, this.hooks);
    this.watchers.add(watcher);
    this.startTicker();
    return watcher;
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

/**
 * One scope's subscription to the store and the latest version it has seen of
 * each config in the scope. It reads each committed version once and hands
 * the same event object to every watcher.
 */
class Channel {
  readonly watchers = new Set<Watcher>();
  /** The latest version dispatched, by config name. */
  readonly current = new Map<string, ConfigVersion>();
  readonly ready: Promise<void>;
  /** Streams waiting for `ready` to join. */
  opening = 0;
  private readonly wake = new WakeSignal();
  private readonly stopped = new AbortController();
  /** Configs with commits not read yet; `all`: any config of the scope may have some. */
  private dirty = new Set<string>();
  private all = false;
  private unsubscribe: Unsubscribe | undefined;
  private closed = false;

  constructor(
    readonly scope: WatchScope,
    private readonly options: WatchHubOptions,
    private readonly onClosed: () => void,
  ) {
    this.ready = this.start();
    // A failed start is reported to the watchers awaiting `ready`; the channel is gone by then.
    this.ready.catch(() => this.close());
  }

  keyOf(configName: string): ConfigKey {
    return { userId: this.scope.userId, configName };
  }

  /** Closes the channel if no stream uses it or is about to (after a failed or abandoned open). */
  releaseIfIdle(): void {
    if (this.watchers.size === 0 && this.opening === 0) this.close();
  }

  leave(watcher: Watcher): void {
    this.watchers.delete(watcher);
    this.releaseIfIdle();
  }

  private async start(): Promise<void> {
    const { store } = this.options;
    // Subscribe before the first read, so that no commit falls between the two.
    const unsubscribe = await store.subscribe(this.scope, (configName) => {
      if (configName === undefined) this.all = true;
      else this.dirty.add(configName);
      this.wake.notify();
    });
    if (this.closed) {
      unsubscribe();
      throw new CfgdError('cancelled', 'CANCELLED', 'the watch was cancelled');
    }
    this.unsubscribe = unsubscribe;
    const { configName } = this.scope;
    const initial =
      configName === undefined ? await store.listLatest(this.scope.userId) : [await store.latest(this.keyOf(configName))];
    for (const version of initial) if (version !== undefined) this.current.set(version.key.configName, version);
    void this.run();
  }

  /** Reads what the wake-ups announce and dispatches it, until the channel closes. */
  private async run(): Promise<void> {
    const signal = this.stopped.signal;
    try {
      for (;;) {
        await this.wake.wait(signal);
        const all = this.all;
        const names = this.dirty;
        this.all = false;
        this.dirty = new Set();
        try {
          await this.catchUp(all, names);
        } catch (error: unknown) {
          if (!(error instanceof CfgdError && error.kind === 'unavailable')) throw error;
          // Look again after a while (or at the next wake-up, such as the backend's feed coming back).
          this.all ||= all;
          for (const name of names) this.dirty.add(name);
          await this.wake.wait(signal, this.options.retryMs ?? DEFAULT_RETRY_MS);
          this.wake.notify();
        }
      }
    } catch (error: unknown) {
      if (signal.aborted) return;
      for (const watcher of [...this.watchers]) watcher.fail(error);
      this.close();
    }
  }

  private async catchUp(all: boolean, names: Set<string>): Promise<void> {
    const { store } = this.options;
    if (all) {
      if (this.scope.configName !== undefined) names.add(this.scope.configName);
      else {
        for (const name of this.current.keys()) names.add(name);
        for (const version of await store.listLatest(this.scope.userId)) names.add(version.key.configName);
      }
    }
    for (const name of names) {
      const key = this.keyOf(name);
      for (;;) {
        if (this.closed) return;
        const after = this.current.get(name)?.version ?? 0;
        const batch = await store.versionsAfter(key, after, READ_BATCH);
        for (const version of batch) this.dispatch(name, version);
        if (batch.length < READ_BATCH) break;
      }
    }
  }

  private dispatch(name: string, version: ConfigVersion): void {
    const previous = this.current.get(name)?.version ?? 0;
    if (version.version !== previous + 1) {
      throw new Error(`${this.scope.userId}/${name}: version ${version.version} follows ${previous}`);
    }
    this.current.set(name, version);
    const event: WatchEvent = { kind: 'version', version };
    for (const watcher of this.watchers) watcher.offer(name, event);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopped.abort();
    this.unsubscribe?.();
    this.onClosed();
  }
}

interface CatchUp {
  readonly key: ConfigKey;
  after: number;
  readonly upTo: number;
}

interface WatcherHooks {
  onClose(watcher: Watcher): void;
  onOverflow(): void;
}

/**
 * One stream. Its start (the snapshot of current versions and the ranges to
 * read back from the store) is fixed when it joins its channel, in the same
 * turn of the event loop as its registration; everything dispatched after
 * that goes to its live queue. It hands out, in order: the snapshot, the
 * catch-up ranges, the INITIAL_STATE_COMPLETE marker (user watches), then the
 * live queue.
 */
class Watcher implements WatchStream, AsyncIterator<WatchEvent> {
  private snapshot: WatchEvent[] = [];
  private snapshotNext = 0;
  private readonly catchUps: CatchUp[] = [];
  private catchUpBuffer: WatchEvent[] = [];
  private markerPending: boolean;
  private queue: (WatchEvent | undefined)[] = [];
  private head = 0;
  /** The highest version taken into this stream, by config name. */
  private readonly taken = new Map<string, number>();
  /**
   * Config watches: the last version the reader can have received, where a resume starts:
   * the highest version handed out, or before any, the version the stream started after.
   */
  private delivered = 0;
  private readonly wake = new WakeSignal();
  /** Made on first use: transports ask for it only while their client is not reading. */
  private endedController: AbortController | undefined;
  private failure: unknown;
  private closed = false;
  private sentSinceTick = false;

  constructor(
    private readonly channel: Channel,
    start: WatchStart,
    private readonly signal: AbortSignal,
    private readonly options: WatchHubOptions,
    private readonly hooks: WatcherHooks,
  ) {
    this.markerPending = start.scope === 'user';
    if (start.scope === 'config') {
      const name = channel.scope.configName!;
      const current = channel.current.get(name);
      if (start.after === undefined) {
        if (current !== undefined) this.snapshot.push({ kind: 'version', version: current });
        this.taken.set(name, current?.version ?? 0);
        // Resuming after the version before the snapshot gives the snapshot again, then what followed.
        this.delivered = Math.max(0, (current?.version ?? 0) - 1);
      } else {
        this.startAfter(name, start.after, current);
        this.delivered = start.after;
      }
    } else {
      for (const [name, current] of channel.current) {
        const known = start.known.get(name);
        if (known === undefined) {
          this.snapshot.push({ kind: 'version', version: current });
          this.taken.set(name, current.version);
        } else {
          this.startAfter(name, known, current);
        }
      }
      // Known configs the channel has not seen: their versions after the known one arrive live.
      for (const [name, known] of start.known) if (!this.taken.has(name)) this.taken.set(name, known);
    }
    channel.watchers.add(this);
    this.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  get ended(): AbortSignal {
    if (this.endedController === undefined) {
      this.endedController = new AbortController();
      if (this.failure !== undefined) this.endedController.abort(this.failure);
    }
    return this.endedController.signal;
  }

  /** Events waiting in the live queue. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    return this;
  }

  /** A version the channel dispatched: taken when it directly follows what this stream holds. */
  offer(name: string, event: WatchEvent & { kind: 'version' }): void {
    const taken = this.taken.get(name) ?? 0;
    const version = event.version.version;
    if (version <= taken) return;
    if (version !== taken + 1) {
      this.fail(new Error(`${this.channel.scope.userId}/${name}: stream at version ${taken} was offered ${version}`));
      return;
    }
    this.taken.set(name, version);
    this.queue.push(event);
    if (this.queued > this.options.maxQueuedEvents) {
      this.hooks.onOverflow();
      this.fail(this.overflowError());
      return;
    }
    this.wake.notify();
  }

  /** Heartbeat: a stream idle since the last tick gets a PROGRESS event. */
  tick(): void {
    if (!this.sentSinceTick && !this.markerPending && this.queued === 0 && this.catchUps.length === 0) {
      this.queue.push(PROGRESS);
      this.wake.notify();
    }
    this.sentSinceTick = false;
  }

  async next(): Promise<IteratorResult<WatchEvent>> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      this.signal.throwIfAborted();
      if (this.closed) return { done: true, value: undefined };
      const event = this.snapshotNext < this.snapshot.length ? this.snapshot[this.snapshotNext++] : this.catchUpBuffer.shift();
      if (event !== undefined) return this.deliver(event);
      const range = this.catchUps[0];
      if (range !== undefined) {
        await this.readRange(range);
        continue;
      }
      if (this.markerPending) {
        this.markerPending = false;
        return this.deliver(INITIAL_STATE_COMPLETE);
      }
      if (this.head < this.queue.length) {
        const queued = this.queue[this.head]!;
        this.queue[this.head++] = undefined;
        if (this.head === this.queue.length) {
          this.queue = [];
          this.head = 0;
        } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        return this.deliver(queued);
      }
      // No abort listener per wait: an abort closes the stream and notifies (see onAbort).
      await this.wake.wait();
    }
  }

  async return(): Promise<IteratorResult<WatchEvent>> {
    this.close();
    return { done: true, value: undefined };
  }

  /** Ends the stream with `reason`: the reader's next call throws it. */
  fail(reason: unknown): void {
    if (this.closed) return;
    this.failure = reason;
    this.endedController?.abort(reason);
    this.close();
    this.wake.notify();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.head = 0;
    this.snapshot = [];
    this.catchUpBuffer = [];
    this.signal.removeEventListener('abort', this.onAbort);
    this.channel.leave(this);
    this.hooks.onClose(this);
  }

  private readonly onAbort = (): void => {
    this.close();
    this.wake.notify();
  };

  private startAfter(name: string, after: number, current: ConfigVersion | undefined): void {
    const upTo = current?.version ?? 0;
    if (after < upTo) this.catchUps.push({ key: this.channel.keyOf(name), after, upTo });
    this.taken.set(name, Math.max(after, upTo));
  }

  private deliver(event: WatchEvent): IteratorResult<WatchEvent> {
    if (event.kind === 'version') this.delivered = event.version.version;
    // A PROGRESS message is the heartbeat itself: counting it as traffic would skip every other tick.
    if (event.kind !== 'progress') this.sentSinceTick = true;
    return { done: false, value: event };
  }

  /** Reads the next batch of a catch-up range from the store, retrying while it is unavailable. */
  private async readRange(range: CatchUp): Promise<void> {
    let batch: ConfigVersion[];
    try {
      batch = await this.options.store.versionsAfter(range.key, range.after, Math.min(READ_BATCH, range.upTo - range.after));
    } catch (error: unknown) {
      if (!(error instanceof CfgdError && error.kind === 'unavailable')) throw error;
      await this.wake.wait(this.signal, this.options.retryMs ?? DEFAULT_RETRY_MS);
      return;
    }
    for (const version of batch) {
      if (version.version !== range.after + 1) {
        throw new Error(`${range.key.userId}/${range.key.configName}: version ${version.version} follows ${range.after}`);
      }
      range.after = version.version;
      this.catchUpBuffer.push({ kind: 'version', version });
    }
    if (batch.length === 0 || range.after >= range.upTo) this.catchUps.shift();
  }

  private overflowError(): CfgdError {
    const { configName, userId } = this.channel.scope;
    const limit = this.options.maxQueuedEvents;
    if (configName !== undefined) {
      const resume = this.delivered;
      return new CfgdError(
        'resource-exhausted',
        'WATCH_READER_TOO_SLOW',
        `the reader fell more than ${limit} events behind; every version up to ${resume} was sent; ` +
          `resume with start_version=${resume}`,
        { metadata: { resume_start_version: String(resume), max_queued_events: String(limit) } },
      );
    }
    return new CfgdError(
      'resource-exhausted',
      'WATCH_READER_TOO_SLOW',
      `the reader fell more than ${limit} events behind; every version sent before this error was delivered; ` +
        `resume with known_versions set to the last version received of each config of ${userId}`,
      { metadata: { max_queued_events: String(limit) } },
    );
  }
}

function scopeId(scope: WatchScope): string {
  return scope.configName === undefined ? `${scope.userId}/` : `${scope.userId}/${scope.configName}`;
}
