// The state of a config page: the latest version, the history loaded so far, and the live stream.
import { type Current, currentOf } from './config-data.js';
import { versionOf } from './format.js';
import type { AuditEntry, Config } from './types.js';

/** The live stream's state: open, down and being retried, or refused for good. */
export type LiveState =
  | { readonly kind: 'live' }
  | { readonly kind: 'reconnecting' }
  | { readonly kind: 'refused'; readonly message: string };

/** A config page once its config is loaded. */
export interface ConfigModel {
  readonly current: Current;
  /** Audit entries, newest first, each version once. */
  readonly entries: readonly AuditEntry[];
  /** Versions that arrived after the page loaded (live, or from this page's own writes). */
  readonly fresh: ReadonlySet<number>;
  /** The oldest version the server keeps, as far as known. */
  readonly firstKept: number;
  readonly live: LiveState;
}

/** What changes a ConfigModel. */
export type ConfigAction =
  | {
      readonly type: 'loaded';
      readonly current: Current;
      readonly entries: readonly AuditEntry[];
      readonly firstKept: number;
    }
  | { readonly type: 'version'; readonly config: Config; readonly entry: AuditEntry }
  | { readonly type: 'older'; readonly entries: readonly AuditEntry[]; readonly firstKept: number }
  | { readonly type: 'live'; readonly live: LiveState };

/** Merges entries into a newest-first list, each version once (the one already there wins). */
export function mergeEntries(list: readonly AuditEntry[], more: readonly AuditEntry[]): AuditEntry[] {
  const byVersion = new Map<number, AuditEntry>();
  for (const entry of [...more, ...list]) byVersion.set(versionOf(entry.version), entry);
  return [...byVersion.entries()].sort(([a], [b]) => b - a).map(([, entry]) => entry);
}

/**
 * Applies an action. A version newer than the current one becomes current and is marked fresh;
 * one already known (the stream and a write's answer both bring it) changes nothing.
 */
export function reduceConfig(model: ConfigModel | undefined, action: ConfigAction): ConfigModel | undefined {
  if (action.type === 'loaded') {
    return {
      current: action.current,
      entries: mergeEntries([], action.entries),
      fresh: new Set(),
      firstKept: action.firstKept,
      live: model?.live ?? { kind: 'reconnecting' },
    };
  }
  if (model === undefined) return model;
  switch (action.type) {
    case 'version': {
      const version = versionOf(action.entry.version);
      const known = model.entries.some((entry) => versionOf(entry.version) === version);
      if (known && version <= model.current.version) return model;
      const newer = version > model.current.version;
      return {
        ...model,
        current: newer ? currentOf(action.config) : model.current,
        entries: mergeEntries(model.entries, [action.entry]),
        fresh: newer ? new Set([...model.fresh, version]) : model.fresh,
      };
    }
    case 'older':
      return { ...model, entries: mergeEntries(model.entries, action.entries), firstKept: action.firstKept };
    case 'live':
      return { ...model, live: action.live };
  }
}
