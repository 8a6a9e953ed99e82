/**
 * Fleet convergence on a RethinkDB cluster: two server processes on one
 * database, an instance reporting through one and listed through the other,
 * as a fleet whose agents are spread over the nodes behind a load balancer is.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { CfgdClient } from '../../src/client/index.js';
import { spawnCfgd, type CfgdProcess } from '../helpers/process.js';
import { freshDatabase, rethinkStoreUrl } from '../helpers/rethinkdb.js';

const nodes: CfgdProcess[] = [];
const clients: CfgdClient[] = [];

afterAll(async () => {
  for (const client of clients) client.close();
  for (const node of nodes) node.child.kill('SIGTERM');
  await Promise.all(nodes.map((node) => node.exited));
});

describe('FleetService across RethinkDB nodes', () => {
  it('lists on one node the reports every node received, and checks them against the shared versions', async () => {
    const db = freshDatabase('fleet');
    nodes.push(...(await Promise.all([1, 2].map(() => spawnCfgd(['--store', rethinkStoreUrl(db)])))));
    const [a, b] = nodes.map((node) => {
      const client = new CfgdClient({ addresses: [`127.0.0.1:${node.grpcPort}`] });
      clients.push(client);
      return client;
    }) as [CfgdClient, CfgdClient];
    const key = { userId: 'fleet', configName: 'shared' };
    await a.put({ ...key, values: { v: 1 } });
    await b.put({ ...key, values: { v: 2 } });
    // Version 2 was written through b: a checks a report of it against the shared database.
    await a.reportInstance({ ...key, instanceId: 'pod-a', appliedVersion: 2 });
    await b.reportInstance({ ...key, instanceId: 'pod-b', appliedVersion: 1, failedVersion: 2, error: 'exit 3' });
    for (const client of [a, b]) {
      const listed = await client.listInstances(key);
      expect(listed.latestVersion).toBe(2);
      expect(listed.converged).toBe(1);
      expect(listed.instances.map((each) => [each.instanceId, each.appliedVersion, each.failedVersion])).toEqual([
        ['pod-a', 2, 0],
        ['pod-b', 1, 2],
      ]);
    }
    // A later report through the other node replaces the row: still one per instance.
    await a.reportInstance({ ...key, instanceId: 'pod-b', appliedVersion: 2 });
    expect(await b.listInstances(key)).toMatchObject({ converged: 2, instances: [{}, {}] });
  });
});
