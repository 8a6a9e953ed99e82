/**
 * Readiness follows the database: with RethinkDB behind a proxy that the
 * test cuts and restores, the gRPC health service (Check and Watch) and
 * `/readyz` say NOT_SERVING while the database cannot be reached and SERVING
 * again once it can, while `/healthz` (liveness) stays 200 throughout, so
 * that an outage of the database does not get every node restarted. The
 * probes are called without credentials, with authentication on.
 */
import { Metadata } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/settings/settings.js';
import { TEST_ADMIN_TOKEN } from '../helpers/auth.js';
import { HealthClient, type HealthStatus, type HealthWatch } from '../helpers/health.js';
import { http } from '../helpers/http.js';
import { TcpProxy } from '../helpers/proxy.js';
import { freshDatabase, rethinkStoreConfig } from '../helpers/rethinkdb.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { eventually } from '../helpers/wait.js';
import { metricsOf, type Metrics } from '../helpers/metrics.js';
import { opened, TestClient } from '../helpers/client.js';

const CFGD_SERVICES = ['cfgd.v1.ConfigService', 'cfgd.v1.AuthService', 'cfgd.v1.StatusService'];
/** Probed every 100 ms, each probe failing within the 1 s query timeout: a flip well within this. */
const FLIP_MS = 15_000;

describe('health of a node on RethinkDB, across a database outage', () => {
  let proxy: TcpProxy;
  let server: TestServer;
  let health: HealthClient;

  beforeAll(async () => {
    const database = rethinkStoreConfig(freshDatabase('health'), 1000);
    proxy = await TcpProxy.start(database.port, database.host);
    server = await startTestServer({
      store: { ...database, host: '127.0.0.1', port: proxy.port },
      healthCheckMs: 100,
      auth: { ...DEFAULTS.auth, mode: 'on', adminToken: TEST_ADMIN_TOKEN },
    });
    health = new HealthClient(server.cfgd.grpcPort);
  });

  // A test that fails mid-outage leaves the next one a reachable database.
  afterEach(() => proxy?.restore());

  afterAll(async () => {
    health?.close();
    await server?.stop();
    await proxy?.stop();
  });

  /** Check answers `status` for the server and for each cfgd service. */
  async function expectChecks(status: HealthStatus): Promise<void> {
    for (const service of ['', ...CFGD_SERVICES]) expect(await health.check(service), service).toBe(status);
  }

  async function expectProbe(path: string, status: number, body: { status: HealthStatus }): Promise<void> {
    const response = await http(server.cfgd.httpPort, 'GET', path);
    expect(response.status, path).toBe(status);
    expect(response.json, path).toStrictEqual(body);
  }

  /** Nothing ended the stream: a race against a promise that is already resolved. */
  async function expectOpen(watch: HealthWatch): Promise<void> {
    expect(await Promise.race([watch.ended, Promise.resolve('open')])).toBe('open');
  }

  it('Check, Watch and /readyz flip to NOT_SERVING while the database is cut off and back once it is not; /healthz stays 200', async () => {
    const watches = [health.watch(''), health.watch('cfgd.v1.ConfigService')];
    await eventually(() => {
      for (const watch of watches) expect(watch.statuses).toEqual(['SERVING']);
    });
    await expectChecks('SERVING');
    await expectProbe('/readyz', 200, { status: 'SERVING' });
    await expectProbe('/healthz', 200, { status: 'SERVING' });

    proxy.cut();
    await eventually(async () => {
      for (const watch of watches) expect(watch.statuses).toEqual(['SERVING', 'NOT_SERVING']);
      await expectChecks('NOT_SERVING');
      await expectProbe('/readyz', 503, { status: 'NOT_SERVING' });
    }, FLIP_MS);
    // Liveness does not follow the store.
    await expectProbe('/healthz', 200, { status: 'SERVING' });
    expect(server.cfgd.health.status).toBe('NOT_SERVING');

    proxy.restore();
    await eventually(async () => {
      for (const watch of watches) expect(watch.statuses).toEqual(['SERVING', 'NOT_SERVING', 'SERVING']);
      await expectChecks('SERVING');
      await expectProbe('/readyz', 200, { status: 'SERVING' });
    }, FLIP_MS);
    await expectProbe('/healthz', 200, { status: 'SERVING' });
    // The watches heard each change once and are still open, ready for the next one.
    for (const watch of watches) await expectOpen(watch);
  });

  it('a Watch opened during an outage starts with NOT_SERVING, then hears SERVING when the database is back', async () => {
    await expectChecks('SERVING');
    proxy.cut();
    await eventually(() => expectChecks('NOT_SERVING'), FLIP_MS);
    const watch = health.watch('');
    await eventually(() => expect(watch.statuses).toEqual(['NOT_SERVING']));
    await expectProbe('/healthz', 200, { status: 'SERVING' });

    proxy.restore();
    await eventually(() => expect(watch.statuses).toEqual(['NOT_SERVING', 'SERVING']), FLIP_MS);
    await expectOpen(watch);
  });

  it('a database that stops answering without closing the connection is NOT_SERVING within the query timeout, then SERVING on a fresh connection', async () => {
    await expectChecks('SERVING');
    const watch = health.watch('');
    await eventually(() => expect(watch.statuses).toEqual(['SERVING']));
    // Every open connection stops delivering, as to a peer that vanished; new ones still get through.
    proxy.freeze();
    // The probe that hangs is answered by the query timeout, which also drops the connection.
    await eventually(() => expect(watch.statuses).toEqual(['SERVING', 'NOT_SERVING', 'SERVING']), FLIP_MS);
    await expectChecks('SERVING');
    await expectProbe('/readyz', 200, { status: 'SERVING' });
    await expectOpen(watch);
  });

  it('the metrics follow the database connection and count the changefeed reopened after the outage', async () => {
    const admin = `Bearer ${TEST_ADMIN_TOKEN}`;
    const scrape = (): Promise<Metrics> => metricsOf(server.cfgd.httpPort, admin);
    const metadata = new Metadata();
    metadata.set('authorization', admin);
    const client = new TestClient(server.cfgd.grpcPort);
    // A watch holds the store's changefeed open.
    const stream = client.raw.watch({ userId: 'health', configName: 'feed', knownVersions: {} }, metadata);
    stream.on('error', () => {});
    try {
      await opened(stream);
      await eventually(async () => {
        const metrics = await scrape();
        expect(metrics.value('cfgd_store_connected')).toBe(1);
        expect(metrics.value('cfgd_store_changefeeds')).toBe(1);
        expect(metrics.value('cfgd_serving')).toBe(1);
      });
      const restarts = (await scrape()).value('cfgd_store_changefeed_restarts_total');

      proxy.cut();
      await eventually(async () => {
        const metrics = await scrape();
        expect(metrics.value('cfgd_store_connected')).toBe(0);
        expect(metrics.value('cfgd_serving')).toBe(0);
      }, FLIP_MS);

      proxy.restore();
      await eventually(async () => {
        const metrics = await scrape();
        expect(metrics.value('cfgd_store_connected')).toBe(1);
        expect(metrics.value('cfgd_serving')).toBe(1);
        expect(metrics.value('cfgd_store_changefeed_restarts_total')).toBeGreaterThan(restarts);
      }, FLIP_MS);
    } finally {
      stream.cancel();
      client.close();
    }
  });
});
