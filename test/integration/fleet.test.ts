/**
 * FleetService over real gRPC and REST on the embedded store: reports are
 * validated against the config, replace each other per instance, are bounded
 * per config, and are forgotten when an instance goes silent (the server's
 * clock is the test's, so expiry needs no waiting).
 */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CfgdClient, CfgdClientError } from '../../src/client/index.js';
import { http, sendJson } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const TTL_MS = 60_000;
const MAX_INSTANCES = 3;

let server: TestServer;
let client: CfgdClient;
let now = Date.parse('2026-11-30T12:00:00.000Z');

beforeAll(async () => {
  server = await startTestServer({ instanceTtlMs: TTL_MS, maxInstances: MAX_INSTANCES }, 'normal', undefined, {
    clock: () => new Date(now),
  });
  client = new CfgdClient({ addresses: [`127.0.0.1:${server.cfgd.grpcPort}`], attempts: 1 });
});

afterAll(async () => {
  client.close();
  await server.stop();
});

let counter = 0;
/** A config of its own at `versions` versions. */
async function config(versions: number): Promise<{ userId: string; configName: string }> {
  const key = { userId: 'fleet', configName: `app-${++counter}` };
  for (let n = 1; n <= versions; n++) await client.put({ ...key, values: { n } });
  return key;
}

async function refusal(promise: Promise<unknown>): Promise<CfgdClientError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CfgdClientError);
  return error as CfgdClientError;
}

describe('FleetService', () => {
  it('lists what each instance reported, with the latest version and how many run it', async () => {
    const key = await config(3);
    await client.reportInstance({ ...key, instanceId: 'web-2', appliedVersion: 3 });
    await client.reportInstance({ ...key, instanceId: 'web-1', appliedVersion: 2 });
    now += 1000;
    const failed = await client.reportInstance({
      ...key,
      instanceId: 'web-3',
      appliedVersion: 2,
      failedVersion: 3,
      error: 'reload: exit status 3',
    });
    expect(failed.instance).toMatchObject({ instanceId: 'web-3', failedVersion: 3, reportedBy: 'anonymous' });
    expect(failed.instance?.reportTime?.getTime()).toBe(now);

    const listed = await client.listInstances(key);
    expect(listed.latestVersion).toBe(3);
    expect(listed.converged).toBe(1);
    expect(listed.instanceTtlMs).toBe(TTL_MS);
    expect(
      listed.instances.map(({ instanceId, appliedVersion, failedVersion, error }) => [
        instanceId,
        appliedVersion,
        failedVersion,
        error,
      ]),
    ).toEqual([
      ['web-1', 2, 0, ''],
      ['web-2', 3, 0, ''],
      ['web-3', 2, 3, 'reload: exit status 3'],
    ]);

    // A later report replaces the instance's row: web-3 applied 3 after all.
    await client.reportInstance({ ...key, instanceId: 'web-3', appliedVersion: 3 });
    const again = await client.listInstances(key);
    expect(again.instances).toHaveLength(3);
    expect(again.instances.find((each) => each.instanceId === 'web-3')).toMatchObject({
      appliedVersion: 3,
      failedVersion: 0,
      error: '',
    });
    expect(again.converged).toBe(2);
  });

  it('forgets an instance silent for the TTL: it is no longer listed, and the sweep removes its row', async () => {
    const key = await config(1);
    await client.reportInstance({ ...key, instanceId: 'old', appliedVersion: 1 });
    now += TTL_MS / 2;
    await client.reportInstance({ ...key, instanceId: 'young', appliedVersion: 1 });
    now += TTL_MS / 2 + 1;
    expect((await client.listInstances(key)).instances.map((each) => each.instanceId)).toEqual(['young']);
    // The row itself goes once the sweep runs (started with the server; run here at once).
    const fleetSweep = await server.cfgd.store.instances.expireReports(new Date(now - TTL_MS));
    expect(fleetSweep).toBeGreaterThanOrEqual(1);
    expect((await server.cfgd.store.instances.reports(key, new Date(0), 100)).map((each) => each.instanceId)).toEqual([
      'young',
    ]);
  });

  it('refuses a new instance beyond --max-instances with RESOURCE_EXHAUSTED, but takes reports of known ones', async () => {
    const key = await config(1);
    for (let i = 1; i <= MAX_INSTANCES; i++) {
      await client.reportInstance({ ...key, instanceId: `i-${i}`, appliedVersion: 1 });
    }
    const error = await refusal(client.reportInstance({ ...key, instanceId: 'one-too-many', appliedVersion: 1 }));
    expect(error.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(error.reason).toBe('TOO_MANY_INSTANCES');
    await client.reportInstance({ ...key, instanceId: 'i-2', appliedVersion: 0 });
    // Once one goes silent, a new one fits.
    now += TTL_MS + 1;
    await client.reportInstance({ ...key, instanceId: 'one-too-many', appliedVersion: 1 });
    expect((await client.listInstances(key)).instances.map((each) => each.instanceId)).toEqual(['one-too-many']);
  });

  it('refuses reports that cannot be true or are malformed, and stores nothing of them', async () => {
    const key = await config(2);
    const cases: [string, Parameters<CfgdClient['reportInstance']>[0], string][] = [
      ['a version the config never had', { ...key, instanceId: 'x', appliedVersion: 3 }, 'applied_version'],
      [
        'a failed version after the latest',
        { ...key, instanceId: 'x', failedVersion: 9, error: 'e' },
        'failed_version',
      ],
      ['an error without its version', { ...key, instanceId: 'x', appliedVersion: 1, error: 'e' }, 'error'],
      [
        'an error over 1024 characters',
        { ...key, instanceId: 'x', failedVersion: 1, error: 'e'.repeat(1025) },
        'error',
      ],
      ['an instance id with a slash', { ...key, instanceId: 'a/b', appliedVersion: 1 }, 'instance_id'],
      ['no instance id', { ...key, instanceId: '', appliedVersion: 1 }, 'instance_id'],
      ['a negative version', { ...key, instanceId: 'x', appliedVersion: -1 }, 'applied_version'],
    ];
    for (const [what, request, field] of cases) {
      const error = await refusal(client.reportInstance(request));
      expect(error.code, what).toBe(status.INVALID_ARGUMENT);
      expect(
        error.fieldViolations.map((each) => each.field),
        what,
      ).toEqual([field]);
    }
    // A config that was never written takes reports of version 0 only.
    const unwritten = { userId: 'fleet', configName: `never-${++counter}` };
    await client.reportInstance({ ...unwritten, instanceId: 'early', appliedVersion: 0 });
    expect((await refusal(client.reportInstance({ ...unwritten, instanceId: 'early', appliedVersion: 1 }))).code).toBe(
      status.INVALID_ARGUMENT,
    );
    expect(await client.listInstances(unwritten)).toMatchObject({ latestVersion: 0, converged: 1 });
    expect((await client.listInstances(key)).instances).toEqual([]);
  });

  it('serves the same over REST, with JSON errors', async () => {
    const key = await config(1);
    const path = `/v1/users/${key.userId}/configs/${key.configName}/instances`;
    const reported = await sendJson(server.cfgd.httpPort, 'POST', `${path}/pod-a:report`, {
      appliedVersion: 1,
    });
    expect(reported.status).toBe(200);
    expect(reported.json.instance).toMatchObject({
      instance_id: 'pod-a',
      applied_version: '1',
      reported_by: 'anonymous',
    });
    const listed = await http(server.cfgd.httpPort, 'GET', path);
    expect(listed.status).toBe(200);
    expect(listed.json).toMatchObject({ latest_version: '1', converged: 1, instances: [{ instance_id: 'pod-a' }] });
    const refused = await sendJson(server.cfgd.httpPort, 'POST', `${path}/pod-a:report`, { appliedVersion: 5 });
    expect(refused.status).toBe(400);
    expect(refused.json.error.details[0].reason).toBe('REPORT_INVALID');
  });
});
