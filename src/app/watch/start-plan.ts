import { CfgdError, type ConfigKey } from '../../domain/index.js';
import type { ResyncEvent, VersionEvent } from './watch-event.js';

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

/** Versions `after + 1 … upTo` of one config, to be read back from the store's history. */
export interface HistoryRange {
  readonly key: ConfigKey;
  readonly after: number;
  readonly upTo: number;
}

/**
 * Configs whose start (a config watch's `after`, a user watch's known version)
 * is ahead of every version the store has: the client holds versions this
 * store never had (it was restored from an older backup, or is another store).
 * By config name, the store's latest version event read when the watch
 * opened, or undefined when the store has no version of the config.
 */
export type StoreBehind = ReadonlyMap<string, VersionEvent | undefined>;

/**
 * What a stream hands out before its live versions, fixed when it joins its
 * channel: the snapshot, then the history ranges, then (user watches) the
 * INITIAL_STATE_COMPLETE marker.
 */
export interface StartPlan {
  /**
   * Handed out first: current versions the client does not hold, and a
   * RESYNC with the store's state of each config the store is behind on.
   */
  readonly snapshot: readonly (VersionEvent | ResyncEvent)[];
  /** History to read from the store after the snapshot, in this order. */
  readonly ranges: readonly HistoryRange[];
  /** Whether INITIAL_STATE_COMPLETE follows the snapshot and the ranges. */
  readonly marker: boolean;
  /**
   * Per config, the highest version the stream holds once the plan is handed
   * out: a live version is taken only if it directly follows this one. A
   * config absent here starts at 0 (its first version is taken). A fresh map
   * that the stream takes over and keeps up to date.
   */
  readonly accepted: Map<string, number>;
  /**
   * Config watches: the "last delivered" version before anything is handed
   * out, i.e. where a resume starts if the stream ends at once: the version
   * it starts after, or before a snapshot of version V, V - 1 (resuming there
   * gives the snapshot again). Undefined for user watches, which have no
   * single resume point: their clients resume with the last version of each
   * config they received.
   */
  readonly lastDelivered: number | undefined;
  /**
   * Configs the store is behind on and has no version of yet: the first
   * version the stream takes of each is handed out as a RESYNC, since the
   * client holds another history of it.
   */
  readonly resyncFirst: ReadonlySet<string>;
}

const NO_RANGES: readonly HistoryRange[] = Object.freeze([]);
const NO_SNAPSHOT: readonly VersionEvent[] = Object.freeze([]);
const NO_NAMES: ReadonlySet<string> = Object.freeze(new Set<string>());
const NOT_BEHIND: StoreBehind = Object.freeze(new Map());

/**
 * Plans where a stream of `scope` starts, against `current`, the latest
 * version event of each config its channel has dispatched (or read at its
 * start). Pure: the hub calls it in the same turn as the stream joins the
 * channel, so every version after `current` reaches the stream live and none
 * is both read back and received live.
 *
 * Config watch without a start: the current version, if any, as the
 * snapshot. From `after`: the versions `after + 1 …` current as a history
 * range; a start at or ahead of the current version waits for what follows
 * it. User watch: the current version of each config not in `known`, the
 * versions after the known one of each config in it, then the marker; a
 * known config the channel has not seen delivers its versions after the
 * known one live.
 *
 * A start ahead of the channel's current version is usually a channel that has
 * not dispatched the latest commit yet; `behind` names the starts the store
 * itself is behind on (see `StoreBehind`). Those configs start over from the
 * store's state: a RESYNC of it (the later of the store's read and the
 * channel's current version), then what follows it live; with no state at
 * all, the first version written is the RESYNC. Throws an 'internal'
 * CfgdError (WATCH_START_MISMATCH) when the start does not fit the scope (a
 * config start without a config name, or a user start with one).
 */
export function planStart(
  scope: WatchScope,
  start: WatchStart,
  current: ReadonlyMap<string, VersionEvent>,
  behind: StoreBehind = NOT_BEHIND,
): StartPlan {
  const { configName } = scope;
  if (start.scope === 'config') {
    if (configName === undefined) throw startMismatch(scope, start);
    return planConfigStart({ userId: scope.userId, configName }, start.after, current.get(configName), behind);
  }
  if (configName !== undefined) throw startMismatch(scope, start);
  return planUserStart(scope.userId, start.known, current, behind);
}

function planConfigStart(
  key: ConfigKey,
  after: number | undefined,
  current: VersionEvent | undefined,
  behind: StoreBehind,
): StartPlan {
  const upTo = current?.version.version ?? 0;
  if (after === undefined) {
    return {
      snapshot: current === undefined ? NO_SNAPSHOT : [current],
      ranges: NO_RANGES,
      marker: false,
      accepted: new Map([[key.configName, upTo]]),
      lastDelivered: Math.max(0, upTo - 1),
      resyncFirst: NO_NAMES,
    };
  }
  if (behind.has(key.configName)) {
    const state = later(current, behind.get(key.configName));
    return {
      snapshot: state === undefined ? NO_SNAPSHOT : [resyncOf(state)],
      ranges: NO_RANGES,
      marker: false,
      accepted: new Map([[key.configName, state?.version.version ?? 0]]),
      // Until the RESYNC is handed out, a resume from the client's own start finds the store behind again.
      lastDelivered: after,
      resyncFirst: state === undefined ? new Set([key.configName]) : NO_NAMES,
    };
  }
  return {
    snapshot: NO_SNAPSHOT,
    ranges: after < upTo ? [{ key, after, upTo }] : NO_RANGES,
    marker: false,
    accepted: new Map([[key.configName, Math.max(after, upTo)]]),
    lastDelivered: after,
    resyncFirst: NO_NAMES,
  };
}

/** The later of two events of one config (either may be missing). */
function later(a: VersionEvent | undefined, b: VersionEvent | undefined): VersionEvent | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return b.version.version > a.version.version ? b : a;
}

function resyncOf(event: VersionEvent): ResyncEvent {
  return { kind: 'resync', version: event.version };
}

function planUserStart(
  userId: string,
  known: ReadonlyMap<string, number>,
  current: ReadonlyMap<string, VersionEvent>,
  behind: StoreBehind,
): StartPlan {
  const snapshot: (VersionEvent | ResyncEvent)[] = [];
  const ranges: HistoryRange[] = [];
  const accepted = new Map<string, number>();
  const resyncFirst = new Set<string>();
  /** A config the store is behind on: its state as a RESYNC, or (no state) its first version. */
  const startOver = (configName: string, event: VersionEvent | undefined): void => {
    const state = later(event, behind.get(configName));
    if (state === undefined) resyncFirst.add(configName);
    else snapshot.push(resyncOf(state));
    accepted.set(configName, state?.version.version ?? 0);
  };
  for (const [configName, event] of current) {
    const upTo = event.version.version;
    const after = known.get(configName);
    if (after === undefined) {
      snapshot.push(event);
      accepted.set(configName, upTo);
    } else if (behind.has(configName)) {
      startOver(configName, event);
    } else {
      if (after < upTo) ranges.push({ key: { userId, configName }, after, upTo });
      accepted.set(configName, Math.max(after, upTo));
    }
  }
  for (const [configName, after] of known) {
    if (accepted.has(configName)) continue;
    if (behind.has(configName)) startOver(configName, undefined);
    else accepted.set(configName, after);
  }
  return { snapshot, ranges, marker: true, accepted, lastDelivered: undefined, resyncFirst };
}

/**
 * The starts that are ahead of the channel's current version: the configs
 * (with the version the client holds) whose start the hub checks against the
 * store before planning, since only a read of the store tells a channel that
 * has not dispatched a commit yet from a store that never had it.
 */
export function startsAhead(
  scope: WatchScope,
  start: WatchStart,
  current: ReadonlyMap<string, VersionEvent>,
): [configName: string, after: number][] {
  const starts: [string, number][] =
    start.scope === 'config'
      ? start.after === undefined || scope.configName === undefined
        ? []
        : [[scope.configName, start.after]]
      : [...start.known];
  return starts.filter(([configName, after]) => after > (current.get(configName)?.version.version ?? 0));
}

/** The resource name of a scope, for messages and logs. */
export function scopeName(scope: WatchScope): string {
  return scope.configName === undefined ? `users/${scope.userId}` : `users/${scope.userId}/configs/${scope.configName}`;
}

function startMismatch(scope: WatchScope, start: WatchStart): CfgdError {
  const what = scopeName(scope);
  return new CfgdError(
    'internal',
    'WATCH_START_MISMATCH',
    `a ${start.scope} watch start cannot open a watch of ${what}`,
    {
      metadata: { scope: what, start: start.scope },
    },
  );
}
