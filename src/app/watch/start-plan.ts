import { CfgdError, type ConfigKey } from '../../domain/index.js';
import type { VersionEvent } from './watch-event.js';

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
 * What a stream hands out before its live versions, fixed when it joins its
 * channel: the snapshot, then the history ranges, then (user watches) the
 * INITIAL_STATE_COMPLETE marker.
 */
export interface StartPlan {
  /** Current versions the client does not hold, handed out first. */
  readonly snapshot: readonly VersionEvent[];
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
}

const NO_RANGES: readonly HistoryRange[] = Object.freeze([]);
const NO_SNAPSHOT: readonly VersionEvent[] = Object.freeze([]);

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
 * known one live. Throws an 'internal' CfgdError (WATCH_START_MISMATCH) when
 * the start does not fit the scope (a config start without a config name,
 * or a user start with one).
 */
export function planStart(scope: WatchScope, start: WatchStart, current: ReadonlyMap<string, VersionEvent>): StartPlan {
  const { configName } = scope;
  if (start.scope === 'config') {
    if (configName === undefined) throw startMismatch(scope, start);
    return planConfigStart({ userId: scope.userId, configName }, start.after, current.get(configName));
  }
  if (configName !== undefined) throw startMismatch(scope, start);
  return planUserStart(scope.userId, start.known, current);
}

function planConfigStart(key: ConfigKey, after: number | undefined, current: VersionEvent | undefined): StartPlan {
  const upTo = current?.version.version ?? 0;
  if (after === undefined) {
    return {
      snapshot: current === undefined ? NO_SNAPSHOT : [current],
      ranges: NO_RANGES,
      marker: false,
      accepted: new Map([[key.configName, upTo]]),
      lastDelivered: Math.max(0, upTo - 1),
    };
  }
  return {
    snapshot: NO_SNAPSHOT,
    ranges: after < upTo ? [{ key, after, upTo }] : NO_RANGES,
    marker: false,
    accepted: new Map([[key.configName, Math.max(after, upTo)]]),
    lastDelivered: after,
  };
}

function planUserStart(
  userId: string,
  known: ReadonlyMap<string, number>,
  current: ReadonlyMap<string, VersionEvent>,
): StartPlan {
  const snapshot: VersionEvent[] = [];
  const ranges: HistoryRange[] = [];
  const accepted = new Map<string, number>();
  for (const [configName, event] of current) {
    const upTo = event.version.version;
    const after = known.get(configName);
    if (after === undefined) {
      snapshot.push(event);
      accepted.set(configName, upTo);
    } else {
      if (after < upTo) ranges.push({ key: { userId, configName }, after, upTo });
      accepted.set(configName, Math.max(after, upTo));
    }
  }
  for (const [configName, after] of known) if (!accepted.has(configName)) accepted.set(configName, after);
  return { snapshot, ranges, marker: true, accepted, lastDelivered: undefined };
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
