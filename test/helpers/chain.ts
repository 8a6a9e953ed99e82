import { expect } from 'vitest';
import { ChangeAction, type Change } from '../../generated/cfgd/v1/config_service.js';
import { apply, jsonEqual, type Change as DomainChange, type JsonObject } from '../../src/domain/index.js';
import type { TestClient } from './client.js';

const ACTIONS: Record<number, DomainChange['action']> = {
  [ChangeAction.CHANGE_ACTION_ADDED]: 'added',
  [ChangeAction.CHANGE_ACTION_UPDATED]: 'updated',
  [ChangeAction.CHANGE_ACTION_REMOVED]: 'removed',
};

function toDomain(change: Change): DomainChange {
  const action = ACTIONS[change.action];
  if (action === 'updated') return { action, key: change.key, value: change.value, oldValue: change.oldValue };
  if (action === undefined) throw new Error(`unexpected action ${change.action}`);
  return { action, key: change.key, value: change.value };
}

/**
 * Reads every version of a config and checks the chain: versions 1..latest
 * with no gap, each audit entry turning its predecessor's values into its own.
 */
export async function checkChain(
  client: TestClient,
  key: { userId: string; configName: string },
): Promise<JsonObject[]> {
  const latest = (await client.get(key)).config!.version;
  const values: JsonObject[] = [];
  const entries: Change[][] = [];
  let pageToken = '';
  do {
    const page = await client.history({ ...key, pageSize: 1000, pageToken });
    for (const entry of page.entries) {
      expect(entry.version).toBe(entries.length + 1);
      entries.push(entry.changes);
    }
    pageToken = page.nextPageToken;
  } while (pageToken !== '');
  expect(entries).toHaveLength(latest);
  let previous: JsonObject = {};
  for (let version = 1; version <= latest; version++) {
    const config = (await client.get({ ...key, version })).config!;
    expect(config.version).toBe(version);
    const rebuilt = apply(entries[version - 1]!.map(toDomain), previous);
    expect(jsonEqual(rebuilt, config.values as JsonObject)).toBe(true);
    values.push(config.values as JsonObject);
    previous = config.values as JsonObject;
  }
  return values;
}
