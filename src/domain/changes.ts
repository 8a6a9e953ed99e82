import { jsonEqual, type JsonObject, type JsonValue } from './values.js';

/** What happened to one top-level key between two versions. */
export type Change =
  | { readonly action: 'added'; readonly key: string; readonly value: JsonValue }
  | { readonly action: 'updated'; readonly key: string; readonly value: JsonValue; readonly oldValue: JsonValue }
  | { readonly action: 'removed'; readonly key: string; readonly value: JsonValue };

/**
 * The changes that turn `before` into `after`, compared at the top level with
 * JSON equality: removed and updated keys in the order of `before`, then added
 * keys in the order of `after`. Empty when the two are equal.
 */
export function diff(before: JsonObject, after: JsonObject): Change[] {
  const changes: Change[] = [];
  for (const [key, oldValue] of Object.entries(before)) {
    if (!Object.hasOwn(after, key)) {
      changes.push({ action: 'removed', key, value: oldValue });
    } else {
      const value = after[key] as JsonValue;
      if (!jsonEqual(oldValue, value)) changes.push({ action: 'updated', key, value, oldValue });
    }
  }
  for (const [key, value] of Object.entries(after)) {
    if (!Object.hasOwn(before, key)) changes.push({ action: 'added', key, value });
  }
  return changes;
}

/**
 * Applies `changes` to `before`: kept and updated keys stay in their place,
 * removed keys disappear, added keys follow in order. `apply(diff(a, b), a)`
 * is JSON-equal to `b`.
 */
export function apply(changes: readonly Change[], before: JsonObject): JsonObject {
  const byKey = new Map(changes.map((change) => [change.key, change]));
  const entries: [string, JsonValue][] = [];
  for (const [key, value] of Object.entries(before)) {
    const change = byKey.get(key);
    if (change === undefined) entries.push([key, value]);
    else if (change.action === 'updated') entries.push([key, change.value]);
  }
  for (const change of changes) {
    if (change.action === 'added') entries.push([change.key, change.value]);
  }
  // fromEntries defines own properties, so a key such as "__proto__" stays data.
  return Object.fromEntries(entries);
}
