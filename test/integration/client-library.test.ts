/**
 * The client library (`CfgdClient`, src/client/) against real cfgd processes
 * over real sockets: a watch that lives through server restarts and through a
 * stream ended for a slow reader, writes retried after their answer was lost
 * (applied once, thanks to the request id every attempt carries), rich errors,
 * cancellation, and failover of calls to the next address.
 *
 * Each process is a `src/main.ts` of its own (`--workers 2`, the default on a
 * two-core machine), started by `spawnCfgd` and killed in `afterAll` whatever
 * a test left behind.
 */
import { status } from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CfgdClient, CfgdClientError, WatchEventType } from '../../src/client/index.js';
import { TEST_ADMIN_TOKEN } from '../helpers/auth.js';
import {
  AnswerDroppingProxy,
  Clients,
  historyVersions,
  latestVersion,
  Nodes,
  range,
  WatchLog,
  waitFor,
  within,
  Writer,
  writeVersions,
  type Node,
} from '../helpers/client-library.js';
import { freePort } from '../helpers/net.js';
import { eventually } from '../helpers/wait.js';

const nodes = new Nodes();
const clients = new Clients();
const proxies: AnswerDroppingProxy[] = [];
const watches: WatchLog[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const watch of watches) await watch.stop().catch(() => {});
  clients.closeAll();
  for (const proxy of proxies) await proxy.stop();
  await nodes.cleanup();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function newDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cfgd-client-'));
  dirs.push(dir);
  return dir;
}

/** A watch consumed by a `for await` loop, stopped in `afterAll` if the test did not get to it. */
function watchLog(...args: ConstructorParameters<typeof WatchLog>): WatchLog {
  const watch = new WatchLog(...args);
  watches.push(watch);
  return watch;
}

/** What a failed call or watch threw, as the CfgdClientError it must be. */
async function clientError(promise: Promise<unknown>): Promise<CfgdClientError> {
  const error = await within(
    promise.then(
      () => new Error('expected a CfgdClientError, but the call succeeded'),
      (e: unknown) => e,
    ),
    30_000,
    'the call to fail',
  );
  expect(error).toBeInstanceOf(CfgdClientError);
  return error as CfgdClientError;
}

/** The `seq` each yielded version carries: distinct when every write was applied once. */
function seqs(watch: WatchLog): unknown[] {
  return watch.events
    .filter((e) => e.type === WatchEventType.WATCH_EVENT_TYPE_VERSION)
    .map((e) => (e.config!.values as Record<string, unknown>).seq);
}

describe('a watch across server restarts (embedded store)', () => {
  it.each(['SIGKILL', 'SIGTERM'] as const)(
    'a server stopped with %s and started again on its port and store: the watch yields 1..N once, in order',
    async (signal) => {
      const port = await freePort();
      // The same port and store for both processes: the client has one address throughout.
      const args = ['--store', newDir(), '--grpc-addr', `127.0.0.1:${port}`];
      const first = await nodes.start(args);
      const key = { userId: 'restart', configName: signal.toLowerCase() };
      const watcherClient = clients.create({ addresses: [first.address] });
      const writerClient = clients.create({ addresses: [first.address], deadlineMs: 5000, attempts: 2 });
      const watch = watchLog(watcherClient, key, { startVersion: 0 });
      const writer = new Writer(writerClient, [key]);

      await watch.until('20 versions before the restart', (w) => w.versions().length >= 20);
      const exit = await nodes.stop(first, signal);
      if (signal === 'SIGKILL') expect(exit.signal).toBe('SIGKILL');
      else expect(exit).toEqual({ code: 0, signal: null });
      const ackedBefore = writer.total;
      const seenBefore = watch.versions().length;

      const second = await nodes.start(args);
      expect(second.address).toBe(first.address);
      await waitFor('20 writes acknowledged by the second process', () => writer.total >= ackedBefore + 20, 60_000);
      await writer.stop();
      const latest = await latestVersion(writerClient, key);
      await watch.until(`version ${latest}`, (w) => Math.max(0, ...w.versions()) >= latest, 60_000);
      await watch.stop();

      // Every version exactly once and in order, the last one the store's latest.
      expect(watch.versions()).toEqual(range(1, latest));
      expect(watch.error).toBeUndefined();
      // The watch saw versions of both processes, and reconnected between them.
      expect(seenBefore).toBeGreaterThanOrEqual(20);
      expect(latest).toBeGreaterThan(seenBefore);
      expect(watch.reconnects.length).toBeGreaterThan(0);
      expect(watch.reconnects.every((e) => e instanceof CfgdClientError)).toBe(true);
      expect(watch.reconnects.map((e) => e.code)).toContain(status.UNAVAILABLE);
      // What the writer was told agrees: each acknowledged version once, none beyond the latest …
      const acked = writer.acked.get(key.configName)!;
      expect(new Set(acked).size).toBe(acked.length);
      expect(Math.max(...acked)).toBeLessThanOrEqual(latest);
      expect(acked.length).toBeGreaterThan(ackedBefore);
      // … and no write was applied twice although some were retried across the restart.
      expect(new Set(seqs(watch)).size).toBe(latest);
      expect(await historyVersions(writerClient, key)).toEqual(range(1, latest));

      await nodes.stop(second, 'SIGTERM');
    },
    180_000,
  );
});

describe('a reader that stops pulling from the iterator', () => {
  it('the server ends the stream with RESOURCE_EXHAUSTED; the watch reconnects and yields 1..200 once, in order', async () => {
    const node = await nodes.start(['--store', newDir(), '--watch-queue', '4', '--heartbeat-ms', '0']);
    const total = 200;
    const key = { userId: 'slow', configName: 'reader' };
    const writer = clients.create({ addresses: [node.address] });
    const watcherClient = clients.create({ addresses: [node.address] });
    const before = await writer.status();

    const watch = watchLog(watcherClient, key, { startVersion: 0 }, (event) => event.config?.version === total);
    // The loop takes the first event and then pulls nothing until `resume`.
    watch.pause();
    // Large enough that 200 versions cannot all wait in the socket and HTTP/2 buffers.
    await writeVersions(writer, key, total, 4, 'x'.repeat(4096));
    // With nobody pulling, the server's queue for the stream overflowed and it ended the stream.
    await eventually(async () => {
      expect((await writer.status()).overflowedStreams).toBe(before.overflowedStreams + 1);
    }, 20_000);
    expect(watch.reconnects).toEqual([]);
    expect(watch.versions()).toEqual([1]);

    watch.resume();
    await within(watch.done, 30_000, `the watch to reach version ${total}`);
    expect(watch.error).toBeUndefined();
    expect(watch.versions()).toEqual(range(1, total));
    const exhausted = watch.reconnects.filter((e) => e.code === status.RESOURCE_EXHAUSTED);
    expect(exhausted).toHaveLength(1);
    expect(exhausted[0]!.reason).toBe('WATCH_READER_TOO_SLOW');
    // Breaking out of the loop at the last version closed the resumed stream too.
    await eventually(async () => expect((await writer.status()).watchStreams).toBe(before.watchStreams), 10_000);
  }, 120_000);
});

describe('close', () => {
  it('ends a call waiting to be retried: it fails with its last error instead of sleeping out the backoff', async () => {
    const port = await freePort();
    // Nothing listens on the port; the backoff between attempts is a minute.
    const client = new CfgdClient({
      addresses: [`127.0.0.1:${port}`],
      attempts: 5,
      deadlineMs: 2000,
      backoff: { initialMs: 60_000, maxMs: 60_000 },
    });
    const call = client.get({ userId: 'u', configName: 'c' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    client.close();
    const error = await within(call, 10_000, 'the call to end after close');
    expect(error).toBeInstanceOf(CfgdClientError);
    expect((error as CfgdClientError).code).toBe(status.UNAVAILABLE);
  });
});

describe('one server for the remaining tests', () => {
  let node: Node;
  let authNode: Node;
  /** A client of `node` only, for setting up and checking. */
  let direct: CfgdClient;
  let n = 0;
  const fresh = (): { userId: string; configName: string } => ({ userId: 'client', configName: `c${++n}` });

  beforeAll(async () => {
    [node, authNode] = await Promise.all([
      nodes.start(['--store', newDir()]),
      nodes.start(['--store', newDir(), '--auth', 'on', '--admin-token', TEST_ADMIN_TOKEN]),
    ]);
    direct = clients.create({ addresses: [node.address] });
  }, 60_000);

  describe('writes are retried once applied', () => {
    it('an answer lost with its connection: the put is retried on the next address and applied once', async () => {
      const key = fresh();
      await direct.put({ ...key, values: { v: 'base' } });
      const proxy = await AnswerDroppingProxy.start(node.cfgd.grpcPort);
      proxies.push(proxy);
      const client = clients.create({ addresses: [proxy.address, node.address], deadlineMs: 30_000 });
      await client.get(key); // Connected through the proxy.
      expect(client.address).toBe(proxy.address);

      proxy.dropAnswers();
      const put = client.put({ ...key, values: { v: 'lost answer' } });
      // The request reached the server, which applied it; its answer does not come back.
      await eventually(async () => expect(await latestVersion(direct, key)).toBe(2), 10_000);
      // Another write, so that applying the put again would make a version of its own.
      await direct.put({ ...key, values: { v: 'meanwhile' } });
      proxy.cut();

      // The retry carried the first attempt's request id: it is answered what the first attempt was.
      const response = await within(put, 20_000, 'the retried put');
      expect(response.config).toMatchObject({ version: 2, values: { v: 'lost answer' } });
      expect(client.address).toBe(node.address);
      expect(await historyVersions(direct, key)).toEqual([1, 2, 3]);
    });

    it('an answer lost with its connection, one address: the retry on a new connection is applied once', async () => {
      const key = fresh();
      await direct.put({ ...key, values: { v: 'base' } });
      const proxy = await AnswerDroppingProxy.start(node.cfgd.grpcPort);
      proxies.push(proxy);
      const client = clients.create({ addresses: [proxy.address], deadlineMs: 30_000 });
      await client.get(key);

      proxy.dropAnswers();
      const put = client.put({ ...key, values: { v: 'lost answer' } });
      await eventually(async () => expect(await latestVersion(direct, key)).toBe(2), 10_000);
      await direct.put({ ...key, values: { v: 'meanwhile' } });
      proxy.cut(); // The next connection through the proxy forwards both ways.

      const response = await within(put, 20_000, 'the retried put');
      expect(response.config).toMatchObject({ version: 2, values: { v: 'lost answer' } });
      expect(await historyVersions(direct, key)).toEqual([1, 2, 3]);
    });

    it('a put repeated by its caller with the same requestId is applied once and answered alike', async () => {
      const key = fresh();
      const requestId = randomUUID();
      const first = await direct.put({ ...key, values: { once: true }, requestId });
      expect(first.config!.version).toBe(1);
      await direct.put({ ...key, values: { once: 'other' } });
      // Repeated after another write: applying it again would make version 3.
      const again = await direct.put({ ...key, values: { once: true }, requestId });
      expect(again).toEqual(first);
      expect(await historyVersions(direct, key)).toEqual([1, 2]);
      // The same id with another request is refused, and writes nothing either.
      const refused = await clientError(direct.put({ ...key, values: { once: false }, requestId }));
      expect(refused.code).toBe(status.INVALID_ARGUMENT);
      expect(await historyVersions(direct, key)).toEqual([1, 2]);
    });
  });

  describe('a server that goes silent without closing the connection (a network partition)', () => {
    // On a connection that stays open but no longer answers, an attempt ends with DEADLINE_EXCEEDED:
    // the next goes to the next address, with the same request id, and gets the first one's answer.
    it('a put whose answers are lost goes to the next address after its deadline, applied once', async () => {
      const key = fresh();
      await direct.put({ ...key, values: { v: 'base' } });
      const proxy = await AnswerDroppingProxy.start(node.cfgd.grpcPort);
      proxies.push(proxy);
      const client = clients.create({ addresses: [proxy.address, node.address], deadlineMs: 1000, attempts: 3 });
      await client.get(key);

      proxy.dropAnswers();
      const put = client.put({ ...key, values: { v: 'lost answer' } });
      await eventually(async () => expect(await latestVersion(direct, key)).toBe(2), 10_000);
      await direct.put({ ...key, values: { v: 'meanwhile' } });
      const response = await within(put, 20_000, 'the put after its deadline');
      expect(response.config).toMatchObject({ version: 2, values: { v: 'lost answer' } });
      expect(client.address).toBe(node.address);
      expect(await historyVersions(direct, key)).toEqual([1, 2, 3]);
    });

    // The client's keepalive pings find a connection that went silent; the watch then reconnects to
    // the next address. The `within` below turns a hang into a failure.
    it('a watch whose server goes silent reconnects to the next address', async () => {
      const key = fresh();
      const proxy = await AnswerDroppingProxy.start(node.cfgd.grpcPort);
      proxies.push(proxy);
      // Pings sooner than the default (10 s, unanswered for 5 s), so that a loaded machine stays well within the bound.
      const client = clients.create({
        addresses: [proxy.address, node.address],
        keepaliveMs: 2000,
        keepaliveTimeoutMs: 2000,
      });
      const watch = watchLog(client, key, { startVersion: 0 });
      await direct.put({ ...key, values: { v: 1 } });
      await watch.until('version 1', (w) => w.versions().includes(1), 10_000);

      proxy.dropAnswers();
      await direct.put({ ...key, values: { v: 2 } });
      await watch.until('version 2 after the server went silent', (w) => w.versions().includes(2), 20_000);
      expect(watch.versions()).toEqual([1, 2]);
      expect(client.address).toBe(node.address);
    }, 60_000);
  });

  describe('errors', () => {
    it('a missing config: NOT_FOUND with reason CONFIG_NOT_FOUND, described on one line', async () => {
      const key = fresh();
      const error = await clientError(direct.get(key));
      expect(error.code).toBe(status.NOT_FOUND);
      expect(error.codeName).toBe('NOT_FOUND');
      expect(error.reason).toBe('CONFIG_NOT_FOUND');
      expect(error.fieldViolations).toEqual([]);
      const line = error.describe();
      expect(line).not.toMatch(/[\r\n]/);
      expect(line).toMatch(/^NOT_FOUND CONFIG_NOT_FOUND: \S/);
      expect(line).toContain(key.configName);
      // The grpc-js error is kept for logs.
      expect(error.cause).toMatchObject({ code: status.NOT_FOUND });
    });

    it('an invalid name: INVALID_ARGUMENT with the field violations the server named', async () => {
      const error = await clientError(direct.put({ userId: 'client', configName: 'not a name!', values: { a: 1 } }));
      expect(error.code).toBe(status.INVALID_ARGUMENT);
      expect(error.fieldViolations.length).toBeGreaterThan(0);
      expect(error.fieldViolations.map((v) => v.field)).toContain('config_name');
      for (const violation of error.fieldViolations) expect(violation.description).not.toBe('');
      const line = error.describe();
      expect(line).not.toMatch(/[\r\n]/);
      expect(line).toMatch(/^INVALID_ARGUMENT\b/);
      expect(line).toContain('(config_name: ');
    });

    it('a watch the server refuses throws from the iterator instead of reconnecting', async () => {
      const key = fresh();
      const anonymous = clients.create({ addresses: [authNode.address] });
      const watch = watchLog(anonymous, key, { startVersion: 0 });
      await within(watch.done, 20_000, 'the refused watch to end');
      expect(watch.error).toBeInstanceOf(CfgdClientError);
      expect((watch.error as CfgdClientError).code).toBe(status.UNAUTHENTICATED);
      expect(watch.reconnects).toEqual([]);
      expect(watch.events).toEqual([]);

      // A token without the grant: PERMISSION_DENIED, thrown as well.
      const admin = clients.create({ addresses: [authNode.address], token: TEST_ADMIN_TOKEN });
      const created = await admin.createToken({
        name: 'elsewhere',
        grants: [{ verb: 'watch', resource: 'users/someone-else/configs/*' }],
      });
      const stranger = clients.create({ addresses: [authNode.address], token: created.secret });
      const denied = watchLog(stranger, key, { startVersion: 0 });
      await within(denied.done, 20_000, 'the denied watch to end');
      expect((denied.error as CfgdClientError).code).toBe(status.PERMISSION_DENIED);
      expect(denied.reconnects).toEqual([]);
    });

    it('signal.abort() ends a watch, waiting for events or for its next reconnection', async () => {
      const key = fresh();
      const baseline = (await direct.status()).watchStreams;
      const watcher = clients.create({ addresses: [node.address] });
      const idle = watchLog(watcher, key, { startVersion: 0 });
      await eventually(async () => expect((await direct.status()).watchStreams).toBe(baseline + 1), 10_000);
      await idle.stop(); // Aborts, and fails if the loop has not ended within 10 s.
      expect(idle.error).toBeUndefined();
      expect(idle.events).toEqual([]);
      await eventually(async () => expect((await direct.status()).watchStreams).toBe(baseline), 10_000);

      // A watch that has nowhere to connect, between two attempts.
      const nowhere = clients.create({ addresses: [`127.0.0.1:${await freePort()}`] });
      const retrying = watchLog(nowhere, key, { startVersion: 0 });
      await retrying.until('a reconnection', (w) => w.reconnects.length > 0, 10_000);
      await retrying.stop();
      expect(retrying.error).toBeUndefined();
      expect(retrying.reconnects.every((e) => e.code === status.UNAVAILABLE)).toBe(true);
    });

    // Closing a grpc-js client leaves its calls running: `close()` cancels the client's watches itself.
    it('close() ends a watch in progress', async () => {
      const key = fresh();
      const client = new CfgdClient({ addresses: [node.address] });
      const watch = watchLog(client, key, { startVersion: 0 });
      await direct.put({ ...key, values: { v: 1 } });
      await watch.until('version 1', (w) => w.versions().includes(1), 10_000);
      client.close();
      await direct.put({ ...key, values: { v: 2 } });
      await within(watch.done, 10_000, 'the watch to end after close()');
      expect(watch.versions()).toEqual([1]);
      if (watch.error !== undefined) expect(watch.error).toBeInstanceOf(CfgdClientError);
    });

    it('breaking out of `for await` cancels the stream on the server', async () => {
      const key = fresh();
      const admin = clients.create({ addresses: [authNode.address], token: TEST_ADMIN_TOKEN });
      const baseline = (await admin.status()).watchStreams;
      const watch = watchLog(admin, key, { startVersion: 0 }, (event) => event.config?.version === 3);
      await eventually(async () => expect((await admin.status()).watchStreams).toBe(baseline + 1), 10_000);
      for (let i = 1; i <= 3; i++) await admin.put({ ...key, values: { i } });
      await within(watch.done, 10_000, 'the loop to break');
      expect(watch.versions()).toEqual([1, 2, 3]);
      expect(watch.error).toBeUndefined();
      // GetStatus with the admin token: the server closed the stream the loop left.
      await eventually(async () => expect((await admin.status()).watchStreams).toBe(baseline), 10_000);
    });
  });

  describe('calls fail over to the next address', () => {
    it('the first address refuses connections: a read goes to the second, which calls then start with', async () => {
      const key = fresh();
      await direct.put({ ...key, values: { v: 1 } });
      const closed = `127.0.0.1:${await freePort()}`;
      const client = clients.create({ addresses: [closed, node.address] });
      expect(client.address).toBe(closed);
      const response = await within(client.get(key), 20_000, 'the get');
      expect(response.config).toMatchObject({ version: 1, values: { v: 1 } });
      expect(client.address).toBe(node.address);
      // Later calls, writes included, go there at once.
      expect((await client.put({ ...key, values: { v: 2 } })).config!.version).toBe(2);
      expect(client.address).toBe(node.address);
    });

    it('a call that is never retried (CreateToken) still moves on when the first address refuses connections', async () => {
      const closed = `127.0.0.1:${await freePort()}`;
      const admin = clients.create({ addresses: [closed, authNode.address], token: TEST_ADMIN_TOKEN });
      const created = await within(admin.createToken({ name: 'failover', grants: [] }), 20_000, 'CreateToken');
      expect(created.secret).not.toBe('');
      expect(admin.address).toBe(authNode.address);
      // Created once.
      const tokens = await admin.listTokens();
      expect(tokens.tokens.filter((t) => t.name === 'failover')).toHaveLength(1);
    });

    it('a watch whose first address refuses connections opens on the second', async () => {
      const key = fresh();
      const closed = `127.0.0.1:${await freePort()}`;
      const client = clients.create({ addresses: [closed, node.address] });
      const watch = watchLog(client, key, { startVersion: 0 }, (event) => event.config?.version === 2);
      await watch.until('the watch to reconnect', (w) => w.reconnects.length > 0, 10_000);
      expect(watch.reconnects[0]!.code).toBe(status.UNAVAILABLE);
      await writeVersions(direct, key, 2, 1);
      await within(watch.done, 20_000, 'the watch to reach version 2');
      expect(watch.versions()).toEqual([1, 2]);
      expect(client.address).toBe(node.address);
    });
  });
});
