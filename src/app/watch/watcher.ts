import { CfgdError, type ConfigVersion } from '../../domain/index.js';
import type { ConfigStore } from '../../store/store.js';
import { WakeSignal } from '../wake-signal.js';
import { BoundedQueue } from './bounded-queue.js';
import type { Channel, ChannelMember } from './channel.js';
import { asError, isInternal, reportFault, type WatchLog } from './faults.js';
import { DEFAULT_RETRY_MS, PrunedVersions, READ_BATCH, readVersionsAfter, sequenceBroken } from './sequence.js';
import { scopeName, type HistoryRange, type StartPlan } from './start-plan.js';
import {
  INITIAL_STATE_COMPLETE,
  PROGRESS,
  type ResyncEvent,
  type VersionEvent,
  type WatchEvent,
} from './watch-event.js';

/** A stream of watch events; `close` releases it (idempotent). */
export interface WatchStream extends AsyncIterable<WatchEvent> {
  /**
   * Aborts, with the error the stream ends with, when the stream ends on the
   * server's side (its reader fell too far behind), so that a transport waiting
   * for its client to drain stops waiting.
   */
  readonly ended: AbortSignal;
  /** Ends the stream from the server's side with `reason`: its reader gets it next, as a transport does `ended`. */
  fail(reason: Error): void;
  close(): void;
}

/**
 * Where a stream is. Events already fetched (the snapshot, a batch of
 * history) are handed out first, whatever the phase; then the phase says what
 * comes next:
 * - `history`: the next batch of the plan's history ranges, read from the store;
 * - `marker`: INITIAL_STATE_COMPLETE (user watches), then `live`;
 * - `live`: the live queue, which has been filling since the stream joined;
 * - `ended`: nothing; the reader gets the failure, the abort reason, or done.
 *
 * A stream starts in the first of history, marker, live that its plan needs,
 * moves forward only, and can end from any phase.
 */
export type WatchPhase = 'history' | 'marker' | 'live' | 'ended';

export interface WatcherOptions {
  readonly store: ConfigStore;
  /** Most live events the stream may hold for its reader; past it the stream ends with RESOURCE_EXHAUSTED. */
  readonly maxQueuedEvents: number;
  readonly retryMs?: number | undefined;
  readonly log?: WatchLog | undefined;
}

export interface WatcherHooks {
  onClose(watcher: Watcher): void;
  onOverflow(): void;
}

const NOTHING: readonly WatchEvent[] = Object.freeze([]);
const NO_RANGES: readonly HistoryRange[] = Object.freeze([]);

/**
 * One stream: hands out its start plan (snapshot, history, marker), then the
 * versions its channel offers, each config's in order and exactly once.
 *
 * A config watch's resume point is derived from one field, `lastDelivered`:
 * the plan sets it to where the stream starts, and each version handed out
 * moves it.
 */
export class Watcher implements WatchStream, ChannelMember, AsyncIterator<WatchEvent> {
  private state: WatchPhase;
  /** Events fetched (the snapshot, then each batch of history) and not handed out yet. */
  private fetched: readonly WatchEvent[];
  private fetchedNext = 0;
  private ranges: readonly HistoryRange[];
  private rangeIndex = 0;
  /** The last version read of `ranges[rangeIndex]`. */
  private readAfter: number;
  private readonly withMarker: boolean;
  private readonly queue: BoundedQueue<WatchEvent>;
  /** The highest version taken into this stream, by config name (see `StartPlan.accepted`). */
  private readonly accepted: Map<string, number>;
  /** Config watches: the version after which a resume starts; undefined for user watches. */
  private lastDelivered: number | undefined;
  /** Configs whose next version taken is handed out as a RESYNC (see `StartPlan.resyncFirst`). */
  private readonly resyncFirst: Set<string> | undefined;
  /**
   * The reader parked in `next` while the stream is live with nothing to hand
   * out: the next event goes straight to it, without passing the queue.
   */
  private parked: ((result: IteratorResult<WatchEvent>) => void) | undefined;
  private parkedReject: ((reason: unknown) => void) | undefined;
  /** Wakes a reader waiting to read history again from a store that was unavailable. */
  private readonly wake = new WakeSignal();
  /** Made on first use: transports ask for it only while their client is not reading. */
  private endedController: AbortController | undefined;
  private failure: Error | undefined;
  private sentSinceTick = false;

  constructor(
    private readonly channel: Channel,
    plan: StartPlan,
    private readonly signal: AbortSignal,
    private readonly options: WatcherOptions,
    private readonly hooks: WatcherHooks,
  ) {
    this.fetched = plan.snapshot;
    this.ranges = plan.ranges.length === 0 ? NO_RANGES : plan.ranges;
    this.readAfter = plan.ranges[0]?.after ?? 0;
    this.withMarker = plan.marker;
    this.state = this.ranges.length > 0 ? 'history' : this.phaseAfterHistory();
    this.queue = new BoundedQueue(options.maxQueuedEvents);
    this.accepted = plan.accepted;
    this.lastDelivered = plan.lastDelivered;
    this.resyncFirst = plan.resyncFirst.size === 0 ? undefined : new Set(plan.resyncFirst);
    // One listener per stream, none per wait: an abort ends the stream and settles its parked reader.
    this.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  get phase(): WatchPhase {
    return this.state;
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
    return this.queue.size;
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    return this;
  }

  /** A version the channel dispatched: taken when it directly follows what this stream holds. */
  offer(configName: string, event: VersionEvent | ResyncEvent): void {
    const accepted = this.accepted.get(configName) ?? 0;
    const version = event.version.version;
    if (version <= accepted) return;
    // A resynchronisation skips the versions retention pruned; anything else must follow on.
    if (event.kind === 'version' && version !== accepted + 1) {
      const error = sequenceBroken(this.channel.keyOf(configName), accepted, version);
      reportFault(this.options.log, error, { scope: scopeName(this.channel.scope) });
      this.fail(error);
      return;
    }
    this.accepted.set(configName, version);
    if (this.resyncFirst?.delete(configName) === true && event.kind === 'version') {
      event = { kind: 'resync', version: event.version };
    }
    if (this.parked !== undefined) {
      this.handOff(event);
      return;
    }
    if (!this.queue.push(event)) {
      this.hooks.onOverflow();
      this.fail(this.overflowError());
      return;
    }
    // A commit also hints that a store that was unavailable is back: a history reader waiting to retry tries now.
    this.wake.notify();
  }

  /** Heartbeat: a live stream idle since the last tick gets a PROGRESS event. */
  tick(): void {
    if (!this.sentSinceTick && this.state === 'live' && this.queue.size === 0) {
      if (this.parked !== undefined) this.handOff(PROGRESS);
      else this.queue.push(PROGRESS);
    }
    this.sentSinceTick = false;
  }

  /**
   * The next event: what was fetched, then what the phase gives; rejects
   * with the stream's failure, or the abort reason, once it has ended. One
   * reader at a time, as `for await` reads (a second call before the first
   * settles is not supported). A live stream with nothing to hand out parks
   * its reader, and `offer`, `tick` or the end of the stream settles it: no
   * promise, closure or abort listener per wait beyond the one returned.
   */
  next(): Promise<IteratorResult<WatchEvent>> {
    let result: IteratorResult<WatchEvent> | undefined;
    try {
      result = this.poll();
    } catch (error: unknown) {
      return Promise.reject(error);
    }
    if (result !== undefined) return Promise.resolve(result);
    if (this.state === 'history') return this.readHistoryThenNext();
    return new Promise((resolve, reject) => {
      this.parked = resolve;
      this.parkedReject = reject;
    });
  }

  /** What can be handed out at once, or undefined (history to read, or nothing yet); throws when ended with an error. */
  private poll(): IteratorResult<WatchEvent> | undefined {
    if (this.state === 'ended') return this.end();
    if (this.fetchedNext < this.fetched.length) {
      const event = this.fetched[this.fetchedNext++]!;
      if (this.fetchedNext === this.fetched.length) {
        this.fetched = NOTHING;
        this.fetchedNext = 0;
      }
      return this.deliver(event);
    }
    switch (this.state) {
      case 'history':
        return undefined;
      case 'marker':
        this.state = 'live';
        return this.deliver(INITIAL_STATE_COMPLETE);
      case 'live': {
        const event = this.queue.shift();
        return event === undefined ? undefined : this.deliver(event);
      }
    }
  }

  private async readHistoryThenNext(): Promise<IteratorResult<WatchEvent>> {
    await this.readHistory();
    return this.next();
  }

  /** Gives `event` to the parked reader: a reader parks only when live with nothing fetched or queued. */
  private handOff(event: WatchEvent): void {
    const resolve = this.parked!;
    this.parked = undefined;
    this.parkedReject = undefined;
    resolve(this.deliver(event));
  }

  async return(): Promise<IteratorResult<WatchEvent>> {
    this.close();
    return { done: true, value: undefined };
  }

  /** Ends the stream with `reason`: the reader's next call throws it. */
  fail(reason: Error): void {
    if (this.state === 'ended') return;
    this.failure = reason;
    this.endedController?.abort(reason);
    this.close();
  }

  close(): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.queue.clear();
    this.fetched = NOTHING;
    this.fetchedNext = 0;
    this.ranges = NO_RANGES;
    this.signal.removeEventListener('abort', this.onAbort);
    this.channel.leave(this);
    this.hooks.onClose(this);
    // A reader waiting for the next event learns that there is none (or the failure, or the abort reason).
    const resolve = this.parked;
    const reject = this.parkedReject;
    this.parked = undefined;
    this.parkedReject = undefined;
    if (resolve !== undefined && reject !== undefined) {
      try {
        resolve(this.end());
      } catch (error: unknown) {
        reject(error);
      }
    }
    this.wake.notify();
  }

  /** An abort (client gone, shutdown, access revoked) also stops a transport waiting for its reader to drain. */
  private readonly onAbort = (): void => {
    this.endedController?.abort(this.signal.reason);
    this.close();
  };

  /** What an ended stream answers: its failure, else the abort reason, else done. */
  private end(): IteratorResult<WatchEvent> {
    if (this.failure !== undefined) throw this.failure;
    this.signal.throwIfAborted();
    return { done: true, value: undefined };
  }

  private phaseAfterHistory(): WatchPhase {
    return this.withMarker ? 'marker' : 'live';
  }

  private deliver(event: WatchEvent): IteratorResult<WatchEvent> {
    if ((event.kind === 'version' || event.kind === 'resync') && this.lastDelivered !== undefined) {
      this.lastDelivered = event.version.version;
    }
    // A PROGRESS message is the heartbeat itself: counting it as traffic would skip every other tick.
    if (event.kind !== 'progress') this.sentSinceTick = true;
    return { done: false, value: event };
  }

  /**
   * Reads the next batch of the current history range into `fetched`, and
   * moves to the next range, or past `history`, when the range is read.
   * While the store is unavailable it waits and lets `next` call again.
   */
  private async readHistory(): Promise<void> {
    const range = this.ranges[this.rangeIndex]!;
    let batch: ConfigVersion[];
    try {
      batch = await readVersionsAfter(
        this.options.store,
        range.key,
        this.readAfter,
        Math.min(READ_BATCH, range.upTo - this.readAfter),
      );
    } catch (error: unknown) {
      if (error instanceof CfgdError && error.kind === 'unavailable') {
        await this.wake.wait(this.signal, this.options.retryMs ?? DEFAULT_RETRY_MS);
        return;
      }
      if (error instanceof PrunedVersions) {
        await this.resync(range);
        return;
      }
      if (isInternal(error)) reportFault(this.options.log, error, { scope: scopeName(this.channel.scope) });
      this.fail(asError(error));
      return;
    }
    if (this.state === 'ended') return;
    const last = batch.at(-1);
    if (last !== undefined) {
      this.readAfter = last.version;
      this.fetched = batch.map((version): WatchEvent => ({ kind: 'version', version }));
      this.fetchedNext = 0;
    }
    if (last === undefined || this.readAfter >= range.upTo) this.nextRange();
  }

  /** The current history range is done: on to the next one, or out of the history phase. */
  private nextRange(): void {
    this.rangeIndex++;
    const following = this.ranges[this.rangeIndex];
    if (following !== undefined) {
      this.readAfter = following.after;
    } else {
      this.ranges = NO_RANGES;
      this.rangeIndex = 0;
      this.state = this.phaseAfterHistory();
    }
  }

  /**
   * Retention pruned versions this range asked for: the stream gets the state
   * at the range's end (the version live delivery continues from), marked as
   * a resynchronisation, instead of the versions it can no longer have.
   */
  private async resync(range: HistoryRange): Promise<void> {
    let current: ConfigVersion | undefined;
    try {
      current = await this.options.store.version(range.key, range.upTo);
    } catch (error: unknown) {
      if (error instanceof CfgdError && error.kind === 'unavailable') {
        await this.wake.wait(this.signal, this.options.retryMs ?? DEFAULT_RETRY_MS);
        return;
      }
      this.fail(asError(error));
      return;
    }
    if (this.state === 'ended') return;
    // Pruned past the range's end too, there is no state to hand out here: the versions after the
    // range reach the stream live, as they do after any range.
    if (current !== undefined) {
      this.fetched = [{ kind: 'resync', version: current }];
      this.fetchedNext = 0;
    }
    this.nextRange();
  }

  private overflowError(): CfgdError {
    const limit = this.queue.limit;
    if (this.lastDelivered !== undefined) {
      const resume = this.lastDelivered;
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
        `resume with known_versions set to the last version received of each config of ${this.channel.scope.userId}`,
      { metadata: { max_queued_events: String(limit) } },
    );
  }
}
