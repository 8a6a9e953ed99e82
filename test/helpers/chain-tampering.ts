/**
 * The tamper-evidence scenario, for both backends: a history written through
 * the API verifies; then each way of editing the stored history directly
 * (the `StoredHistory` of the backend) is reported at the right version.
 */
import { expect } from 'vitest';
import { ChainProblem, type VerifyHistoryResponse } from '../../generated/cfgd/v1/config_service.js';
import { call, type TestClient } from './client.js';
import { setSchema } from './schemas.js';
import { versionHash } from '../../src/domain/index.js';
import { toConfigVersion, type StoredVersionRow } from '../../src/store/stored-row.js';

/** Direct access to the stored versions of one config, bypassing cfgd. */
export interface StoredHistory {
  /** The stored row or document of a version, as the backend keeps it (JSON text fields included). */
  read(version: number): Promise<Record<string, unknown>>;
  /** Overwrites fields of a stored version. */
  update(version: number, fields: Record<string, unknown>): Promise<void>;
}

export async function tamperScenario(
  client: TestClient,
  key: { userId: string; configName: string },
  stored: StoredHistory,
): Promise<void> {
  const verify = (): Promise<VerifyHistoryResponse> => call(client.raw.verifyHistory.bind(client.raw), key);
  // Versions 1..6: every operation that seals a version.
  await client.put({ ...key, values: { a: 1, b: { c: [1, 2] } } });
  await setSchema(client, { ...key, schema: { type: 'object' } });
  await call(client.raw.patch.bind(client.raw), { ...key, patch: { d: 'x' }, validateOnly: false });
  await call(client.raw.rollback.bind(client.raw), { ...key, toVersion: 1, validateOnly: false });
  await call(client.raw.delete.bind(client.raw), { ...key, validateOnly: false });
  await call(client.raw.undelete.bind(client.raw), { ...key, validateOnly: false });
  expect(await verify()).toEqual({
    intact: true,
    firstBadVersion: 0,
    problem: ChainProblem.CHAIN_PROBLEM_UNSPECIFIED,
    firstCheckedVersion: 1,
    latestVersion: 6,
  });
  const history = await client.history(key);
  for (const entry of history.entries) expect(entry.hash).toMatch(/^[0-9a-f]{64}$/);
  expect(history.entries.map((e) => e.previousHash)).toEqual(['', ...history.entries.slice(0, -1).map((e) => e.hash)]);

  // Each edit, then its undoing (the chain is intact again).
  const cases: [string, number, Record<string, unknown>, ChainProblem][] = [
    ['the values of version 4', 4, { values_json: '{"a":2,"b":{"c":[1,2]}}' }, ChainProblem.CHAIN_PROBLEM_CONTENT],
    ['the author of version 3', 3, { author: 'token:someone-else' }, ChainProblem.CHAIN_PROBLEM_CONTENT],
    ['the time of version 1', 1, { created_at: 0 }, ChainProblem.CHAIN_PROBLEM_CONTENT],
    [
      'the changes of the deletion',
      5,
      { changes_json: '[{"action":"removed","key":"a","value":1}]' },
      ChainProblem.CHAIN_PROBLEM_CONTENT,
    ],
    ['the schema set by version 2', 2, { schema_json: '{"type":"array"}' }, ChainProblem.CHAIN_PROBLEM_CONTENT],
    ['a changed hash', 4, { hash: '0'.repeat(64) }, ChainProblem.CHAIN_PROBLEM_CONTENT],
    ['a removed hash', 6, { hash: null }, ChainProblem.CHAIN_PROBLEM_UNSEALED],
  ];
  for (const [what, version, fields, problem] of cases) {
    const original = await stored.read(version);
    const saved = Object.fromEntries(Object.keys(fields).map((name) => [name, original[name] ?? null]));
    await stored.update(version, fields);
    expect(await verify(), what).toMatchObject({ intact: false, firstBadVersion: version, problem });
    await stored.update(version, saved);
    expect((await verify()).intact, `${what}, undone`).toBe(true);
  }
  // Edited values with a hash recomputed to match: the version verifies on its own, but the next
  // one's previous hash names the original, so the chain breaks there.
  const row = await stored.read(4);
  const values_json = '{"a":99}';
  const forged = versionHash(
    toConfigVersion(key, { ...row, values_json } as unknown as StoredVersionRow),
    undefined,
    String(row.previous_hash),
  );
  await stored.update(4, { values_json, hash: forged });
  expect(await verify()).toMatchObject({ intact: false, firstBadVersion: 5, problem: ChainProblem.CHAIN_PROBLEM_LINK });
  await stored.update(4, { values_json: row.values_json, hash: row.hash });
  expect((await verify()).intact).toBe(true);
}
