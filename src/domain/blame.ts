import type { ConfigVersion, WritePlan } from './config.js';

/** One key's last setter. */
export interface BlameEntry {
  readonly key: string;
  /** The version that last set the key; 0 when it was set before cfgd kept blame. */
  readonly version: number;
  readonly author: string;
  readonly at: Date | undefined;
}

/** The blame of a plan's new version: the current version's, moved on by the new version's changes. */
export function withBlame(plan: WritePlan, current: ConfigVersion | undefined): WritePlan {
  if (plan.kind !== 'create') return plan;
  const { next } = plan;
  const keys: Record<string, number> = Object.create(null) as Record<string, number>;
  if (next.hasValues) {
    const before = current?.hasValues === true ? current.blame : undefined;
    for (const name of Object.keys(next.values)) {
      const previous = before === undefined || !Object.hasOwn(before.keys, name) ? 0 : before.keys[name]!;
      keys[name] = previous;
    }
    for (const change of next.audit.changes) {
      if (change.action !== 'removed') keys[change.key] = next.version;
    }
    // After a version without values (or without blame), every key is set by this version.
    if (current?.hasValues !== true) for (const name of Object.keys(keys)) keys[name] = next.version;
  }
  const versions: Record<string, { author: string; at: number }> = Object.create(null) as Record<
    string,
    { author: string; at: number }
  >;
  const known = current?.blame?.versions ?? {};
  for (const version of new Set(Object.values(keys))) {
    if (version === next.version) versions[version] = { author: next.audit.author, at: next.audit.createdAt.getTime() };
    else if (Object.hasOwn(known, String(version))) versions[version] = known[String(version)]!;
  }
  return { ...plan, next: { ...next, blame: { keys: { ...keys }, versions: { ...versions } } } };
}

/** The blame of a version as a list, in the order of its values' keys. */
export function blameEntries(version: ConfigVersion): BlameEntry[] {
  const blame = version.blame;
  return Object.keys(version.values).map((key) => {
    const setBy = blame !== undefined && Object.hasOwn(blame.keys, key) ? blame.keys[key]! : 0;
    const who =
      blame !== undefined && Object.hasOwn(blame.versions, String(setBy)) ? blame.versions[String(setBy)] : undefined;
    return { key, version: setBy, author: who?.author ?? '', at: who === undefined ? undefined : new Date(who.at) };
  });
}
