import { CfgdError, type ConfigKey } from '../../domain/index.js';
import type { ConfigStore, Unsubscribe } from '../../store/store.js';
import { WakeSignal } from '../wake-signal.js';
import { asError, isInternal, reportFault, type WatchLog } from './faults.js';
import { DEFAULT_RETRY_MS, PrunedVersions, READ_BATCH, readVersionsAfter } from './sequence.js';
import { scopeName, type WatchScope } from './start-plan.js';
import type { ResyncEvent, VersionEvent } from './watch-event.js';

/** What a channel needs of a stream that joined it. */
export interface ChannelMember {
  /**
   * A version the channel dispatched: the same event object for every member,
   * each config's versions in order, each once.
   */
  offer(configName: string, event: VersionEvent | ResyncEvent): void;
  /** Ends the member with `reason`: the channel cannot go on. */
  fail(reason: Error): void;
}

export interface ChannelOptions {
  readonly store: ConfigStore;
  /** How long to wait before reading again from a store that was unavailable. */
  readonly retryMs?: number | undefined;
  readonly log?: WatchLog | undefined;
}

/** `starting`: subscribing and reading the current versions; `running`: dispatching; `closed`: for good. */
export type ChannelPhase = 'starting' | 'running' | 'closed';

/**
 * One scope's subscription to the store and the latest version it has seen of
 * each config in the scope. It reads each committed version once and hands
 * the same event object to every member.
 *
 * The channel owns its lifetime: it counts references (streams joining it,
 * plus opens waiting for `ready`) and closes itself, releasing its store
 * subscription, when the last one is released, or when it fails. `onClosed`
 * tells its owner (the hub) to forget it.
 */
export class Channel {
  readonly ready: Promise<void>;
  private state: ChannelPhase = 'starting';
  private references = 0;
  private failure: Error | undefined;
  private readonly members = new Set<ChannelMember>();
  /** The latest version event dispatched (or read at the start), by config name. */
  private readonly latest = new Map<string, VersionEvent>();
  private readonly wake = new WakeSignal();
  private readonly stopped = new AbortController();
  /** Configs with commits not read yet; `all`: any config of the scope may have some. */
  private dirty = new Set<string>();
  private all = false;
  private unsubscribe: Unsubscribe | undefined;

  constructor(
    readonly scope: WatchScope,
    private readonly options: ChannelOptions,
    private readonly onClosed: () => void,
  ) {
    this.ready = this.start();
    // A failed start is reported to the opens awaiting `ready`; the channel is gone by then.
    this.ready.catch(() => this.close());
  }

  get phase(): ChannelPhase {
    return this.state;
  }

  /** The latest version event of each config of the scope, in the order the channel first saw them. */
  get current(): ReadonlyMap<string, VersionEvent> {
    return this.latest;
  }

  /** Streams that joined and have not left. */
  get size(): number {
    return this.members.size;
  }

  /** Takes a reference: the channel stays open until it is released (directly, or by a member leaving). */
  retain(): void {
    this.references++;
  }

  /** Gives a reference back; the last one closes the channel. */
  release(): void {
    this.references--;
    if (this.references <= 0) this.close();
  }

  /** Throws what ended the channel, if it has ended: a stream must not join a closed channel. */
  throwIfClosed(): void {
    if (this.state !== 'closed') return;
    throw this.failure ?? new CfgdError('cancelled', 'CANCELLED', 'the watch was cancelled');
  }

  /**
   * Adds `member`, which takes over a reference from `retain`; from now on it
   * is offered every version dispatched. Call it in the same turn as reading
   * `current` for the member's start, so that nothing falls between the two.
   */
  join(member: ChannelMember): void {
    this.throwIfClosed();
    this.members.add(member);
  }

  /** Removes `member` and releases its reference (once, however often it is called). */
  leave(member: ChannelMember): void {
    if (this.members.delete(member)) this.release();
  }

  keyOf(configName: string): ConfigKey {
    return { userId: this.scope.userId, configName };
  }

  private async start(): Promise<void> {
    const { store } = this.options;
    // Subscribe before the first read, so that no commit falls between the two.
    const unsubscribe = await store.subscribe(this.scope, (configName) => {
      if (configName === undefined) this.all = true;
      else this.dirty.add(configName);
      this.wake.notify();
    });
    if (this.isClosed()) {
      unsubscribe();
      throw new CfgdError('cancelled', 'CANCELLED', 'the watch was cancelled');
    }
    this.unsubscribe = unsubscribe;
    const { configName } = this.scope;
    const initial =
      configName === undefined
        ? await store.listLatest(this.scope.userId)
        : [await store.latest(this.keyOf(configName))];
    for (const version of initial) {
      if (version !== undefined) this.latest.set(version.key.configName, { kind: 'version', version });
    }
    // Released while reading: `close` has already run, and nothing may start a loop any more.
    if (this.isClosed()) return;
    this.state = 'running';
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
      this.fail(asError(error));
    }
  }

  private async catchUp(all: boolean, names: Set<string>): Promise<void> {
    const { store } = this.options;
    if (all) {
      if (this.scope.configName !== undefined) names.add(this.scope.configName);
      else {
        for (const name of this.latest.keys()) names.add(name);
        for (const version of await store.listLatest(this.scope.userId)) names.add(version.key.configName);
      }
    }
    for (const name of names) {
      const key = this.keyOf(name);
      for (;;) {
        if (this.isClosed()) return;
        // This loop is the only writer of `latest` once running, so the read continues the sequence.
        const after = this.latest.get(name)?.version.version ?? 0;
        let batch: VersionEvent['version'][];
        try {
          batch = await readVersionsAfter(store, key, after, READ_BATCH);
        } catch (error: unknown) {
          if (!(error instanceof PrunedVersions)) throw error;
          // Retention pruned versions this channel had not read yet: its streams resynchronise from
          // the current state, and the channel reads on after it.
          const latest = await store.latest(key);
          if (latest === undefined || this.isClosed()) return;
          this.resync(name, latest);
          continue;
        }
        for (const version of batch) this.dispatch(name, version);
        if (batch.length < READ_BATCH) break;
      }
    }
  }

  private dispatch(name: string, version: VersionEvent['version']): void {
    const event: VersionEvent = { kind: 'version', version };
    this.latest.set(name, event);
    for (const member of this.members) member.offer(name, event);
  }

  private resync(name: string, version: VersionEvent['version']): void {
    this.latest.set(name, { kind: 'version', version });
    const event: ResyncEvent = { kind: 'resync', version };
    for (const member of this.members) member.offer(name, event);
  }

  /** Ends every member with `error` and closes: the channel cannot read on. */
  private fail(error: Error): void {
    this.failure = error;
    if (isInternal(error))
      reportFault(this.options.log, error, { scope: scopeName(this.scope), streams: this.members.size });
    for (const member of [...this.members]) member.fail(error);
    this.close();
  }

  /** A method, not a field comparison, because the state changes across every `await`. */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private close(): void {
    if (this.isClosed()) return;
    this.state = 'closed';
    this.stopped.abort();
    this.unsubscribe?.();
    this.onClosed();
  }
}
