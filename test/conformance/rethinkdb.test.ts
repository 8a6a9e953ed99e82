import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CfgdError, type TokenRecord } from '../../src/domain/index.js';
import { bootstrap } from '../../src/store/rethinkdb/bootstrap.js';
import { RethinkConnection } from '../../src/store/rethinkdb/connection.js';
import { INSTANCE_REPORTS, q, REPORTS_BY_INSTANCE, REPORTS_BY_TIME } from '../../src/store/rethinkdb/queries.js';
import { RethinkDbStore } from '../../src/store/rethinkdb/rethinkdb-store.js';
import { SCHEMA } from '../../src/store/rethinkdb/schema.js';
import type { Unsubscribe } from '../../src/store/store.js';
import { TcpProxy } from '../helpers/proxy.js';
import { eventually } from '../helpers/wait.js';
import { freshDatabase, rethinkdbIsReal, rethinkStoreConfig } from '../helpers/rethinkdb.js';
import { credentialContract } from './credential-contract.js';
import { instanceContract } from './instance-contract.js';
import { lifecycleContract } from './lifecycle-contract.js';
import { retentionContract } from './retention-contract.js';
import { schemaContract } from './schema-contract.js';
import { describeStoreContract, type StoreFactory } from './store-contract.js';

const db = freshDatabase('conformance');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const factory: StoreFactory = {
  shared: true,
  open: () => RethinkDbStore.open(rethinkStoreConfig(db), pino({ level: 'silent' })),
};

describeStoreContract('rethinkdb', factory);
schemaContract('rethinkdb', factory);
lifecycleContract('rethinkdb', factory);
retentionContract('rethinkdb', factory);
// reqlite applies an update that reads the document in several steps, so racing ones can interleave.
credentialContract('rethinkdb', factory, { atomicUpdates: rethinkdbIsReal() });
instanceContract('rethinkdb', factory);

/** A database bootstrapped by an older cfgd lacks the tables added since: the next start adds them. */
describe('rethinkdb bootstrap of a database made by an older cfgd', () => {
  const log = pino({ level: 'silent' });

  it('adds the instance reports table and its indexes on the next start', async () => {
    const config = rethinkStoreConfig(freshDatabase('upgrade'));
    const connection = new RethinkConnection(config, log);
    try {
      const older = SCHEMA.filter((table) => table.name !== INSTANCE_REPORTS);
      await bootstrap(connection, { db: config.db, schema: older }, log);
      expect(await connection.run<string[]>(q.tableList(config.db), 'list tables')).not.toContain(INSTANCE_REPORTS);
      const key = { userId: 'fleet', configName: 'upgraded' };
      const report = {
        instanceId: 'web-1',
        appliedVersion: 0,
        failedVersion: 0,
        error: '',
        reportedAt: new Date('2026-05-06T07:08:09.123Z'),
        reportedBy: 'token:agent',
      };
      const store = await RethinkDbStore.open(config, log);
      try {
        await store.instances.putReport(key, report);
        expect(await store.instances.reports(key, new Date(0), 10)).toEqual([report]);
      } finally {
        await store.close();
      }
      expect(await connection.run<string[]>(q.indexList(config.db, INSTANCE_REPORTS), 'list indexes')).toEqual(
        expect.arrayContaining([REPORTS_BY_INSTANCE, REPORTS_BY_TIME]),
      );
    } finally {
      await connection.close();
    }
  });
});

/** What only this backend has: the credential feed, lost and regained with its connection. */
describe('rethinkdb credential feed', () => {
  const log = pino({ level: 'silent' });
  const token = (): TokenRecord => ({
    id: `feed-${randomBytes(6).toString('hex')}`,
    name: 'feed',
    secretHash: randomBytes(32).toString('hex'),
    grants: [],
    createdAt: new Date(),
    createdBy: 'token:test',
  });

  /** A store whose connection runs through a proxy the test can cut, and a store beside it. */
  async function storesBehindProxy(timeoutMs = 5000) {
    const config = rethinkStoreConfig(db, timeoutMs);
    const proxy = await TcpProxy.start(config.port, config.host);
    const store = await RethinkDbStore.open({ ...config, host: '127.0.0.1', port: proxy.port }, log);
    const direct = await RethinkDbStore.open(config, log);
    return { proxy, store, direct };
  }

  it('calls subscribers once it is back after a loss (changes may have been missed), then on each change', async () => {
    const { proxy, store, direct } = await storesBehindProxy();
    try {
      let calls = 0;
      const unsubscribe = await store.credentials.subscribeCredentials(() => void calls++);
      // Not counted among the changefeeds of `subscribe`: those are one per node.
      expect(store.stats().changefeeds).toBe(0);
      await direct.credentials.createToken(token());
      await eventually(() => expect(calls).toBe(1));

      proxy.cut();
      await sleep(300);
      // Missed: the feed is down.
      await direct.credentials.createToken(token());
      await sleep(300);
      expect(calls).toBe(1);
      proxy.restore();
      // Back without any further change: one call says "reload, something may have been missed".
      await eventually(() => expect(calls).toBeGreaterThanOrEqual(2), 10_000);
      await sleep(300);
      expect(calls).toBe(2);
      await direct.credentials.setBinding({
        principal: `jwt:feed-${randomBytes(4).toString('hex')}`,
        grants: [],
        updatedAt: new Date(),
        updatedBy: 'token:test',
      });
      await eventually(() => expect(calls).toBe(3));
      unsubscribe();
    } finally {
      await Promise.all([store.close(), direct.close()]);
      await proxy.stop();
    }
  });

  it('refuses a subscription with UNAVAILABLE while the database is out of reach, and accepts it once it is back', async () => {
    const { proxy, store, direct } = await storesBehindProxy(1000);
    try {
      proxy.cut();
      let calls = 0;
      const started = Date.now();
      const error = await store.credentials.subscribeCredentials(() => void calls++).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CfgdError);
      expect((error as CfgdError).kind).toBe('unavailable');
      expect(Date.now() - started).toBeLessThan(3000);
      proxy.restore();
      let unsubscribe: Unsubscribe | undefined;
      for (const deadline = Date.now() + 10_000; unsubscribe === undefined;) {
        unsubscribe = await store.credentials
          .subscribeCredentials(() => void calls++)
          .catch((e: unknown) => {
            if (Date.now() > deadline) throw e;
            return undefined;
          });
      }
      const before = calls;
      await direct.credentials.createToken(token());
      await eventually(() => expect(calls).toBeGreaterThan(before));
      unsubscribe();
    } finally {
      await Promise.all([store.close(), direct.close()]);
      await proxy.stop();
    }
  });

  it('closing the store ends its credential feed at once, even while the feed waits to reconnect', async () => {
    const { proxy, store, direct } = await storesBehindProxy();
    try {
      let calls = 0;
      await store.credentials.subscribeCredentials(() => void calls++);
      proxy.cut();
      await sleep(500);
      const started = Date.now();
      await store.close();
      expect(Date.now() - started).toBeLessThan(1000);
      proxy.restore();
      const after = calls;
      await direct.credentials.createToken(token());
      await sleep(300);
      expect(calls).toBe(after);
    } finally {
      await Promise.all([store.close(), direct.close()]);
      await proxy.stop();
    }
  });
});
