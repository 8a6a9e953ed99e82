/**
 * The client library's failover between two cfgd processes on one RethinkDB
 * database: clients are given both addresses, the first process is killed
 * (SIGKILL) while a watch runs through it and writes go on, and the watch
 * moves to the second process and resumes there, every version once and in
 * order. On reqlite in `npm test`, on RethinkDB itself in `npm run test:rethinkdb`.
 */
import { status } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { WatchEventType, type WatchResponse } from '../../src/client/index.js';
import {
  Clients,
  latestVersion,
  Nodes,
  range,
  WatchLog,
  waitFor,
  Writer,
  type Node,
} from '../helpers/client-library.js';
import { freshDatabase, rethinkStoreUrl } from '../helpers/rethinkdb.js';

const nodes = new Nodes();
const clients = new Clients();
const watches: WatchLog[] = [];

afterAll(async () => {
  for (const watch of watches) await watch.stop().catch(() => {});
  clients.closeAll();
  await nodes.cleanup();
});

/** Two cfgd processes on a fresh database (each test its own: reqlite slows down as tables grow). */
async function twoNodes(prefix: string): Promise<[Node, Node]> {
  const db = freshDatabase(prefix);
  // One after the other: the first creates the database and its tables.
  const first = await nodes.start(['--store', rethinkStoreUrl(db)]);
  const second = await nodes.start(['--store', rethinkStoreUrl(db)]);
  return [first, second];
}

/** The `seq` of each VERSION event (of `configName`): distinct when every write was applied once. */
function seqs(events: readonly WatchResponse[], configName?: string): unknown[] {
  return events
    .filter((e) => e.type === WatchEventType.WATCH_EVENT_TYPE_VERSION)
    .filter((e) => configName === undefined || e.config?.configName === configName)
    .map((e) => (e.config!.values as Record<string, unknown>).seq);
}

describe('CfgdClient failover between two cfgd processes on one RethinkDB database', () => {
  it('a config watch through the first process resumes on the second when the first is killed: 1..N once, in order', async () => {
    const [first, second] = await twoNodes('client_failover');
    const addresses = [first.address, second.address];
    const key = { userId: 'failover', configName: 'app' };
    const watcherClient = clients.create({ addresses });
    // The writer's calls fail over too: a put in flight on the killed process is retried on the
    // second with its request id.
    const writerClient = clients.create({ addresses, deadlineMs: 5000 });
    const watch = new WatchLog(watcherClient, key, { startVersion: 0 });
    watches.push(watch);
    const writer = new Writer(writerClient, [key]);

    await watch.until('15 versions through the first process', (w) => w.versions().length >= 15, 60_000);
    expect(watcherClient.address).toBe(first.address);
    expect((await nodes.stop(first, 'SIGKILL')).signal).toBe('SIGKILL');
    const ackedBefore = writer.total;
    const seenBefore = watch.versions().length;

    await waitFor('15 writes acknowledged by the second process', () => writer.total >= ackedBefore + 15, 60_000);
    await writer.stop();
    expect(writerClient.address).toBe(second.address);
    const latest = await latestVersion(writerClient, key);
    await watch.until(`version ${latest}`, (w) => Math.max(0, ...w.versions()) >= latest, 60_000);
    await watch.stop();

    expect(watch.error).toBeUndefined();
    expect(watch.versions()).toEqual(range(1, latest));
    expect(latest).toBeGreaterThan(seenBefore);
    // It reconnected, to the second process.
    expect(watch.reconnects.map((e) => e.code)).toContain(status.UNAVAILABLE);
    expect(watcherClient.address).toBe(second.address);
    // No write applied twice; each acknowledged version once.
    expect(new Set(seqs(watch.events)).size).toBe(latest);
    const acked = writer.acked.get(key.configName)!;
    expect(new Set(acked).size).toBe(acked.length);
    expect(Math.max(...acked)).toBeLessThanOrEqual(latest);
  }, 240_000);

  it('a user watch over three configs: each config 1..N once, in order, and INITIAL_STATE_COMPLETE once', async () => {
    const [first, second] = await twoNodes('client_user_failover');
    const addresses = [first.address, second.address];
    const userId = 'failover-user';
    const keys = ['alpha', 'beta', 'gamma'].map((configName) => ({ userId, configName }));
    const writerClient = clients.create({ addresses, deadlineMs: 5000 });
    // Each config exists before the watch: its first version comes in the initial state.
    for (const key of keys) await writerClient.put({ ...key, values: { seq: 0 } });

    const watcherClient = clients.create({ addresses });
    const watch = new WatchLog(watcherClient, { userId });
    watches.push(watch);
    await watch.until(
      'the initial state',
      (w) => w.count(WatchEventType.WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE) === 1,
    );
    const writer = new Writer(writerClient, keys);
    await watch.until('30 versions through the first process', (w) => w.versions().length >= 3 + 30, 60_000);
    expect(watcherClient.address).toBe(first.address);
    expect((await nodes.stop(first, 'SIGKILL')).signal).toBe('SIGKILL');
    const ackedBefore = writer.total;
    const ackedAtKill = new Map(keys.map((k) => [k.configName, writer.acked.get(k.configName)!.length]));

    await waitFor('30 writes acknowledged by the second process', () => writer.total >= ackedBefore + 30, 60_000);
    await writer.stop();
    const latest = new Map<string, number>();
    for (const key of keys) latest.set(key.configName, await latestVersion(writerClient, key));
    await watch.until(
      'the latest version of each config',
      (w) => keys.every((k) => Math.max(0, ...w.versions(k.configName)) >= latest.get(k.configName)!),
      60_000,
    );
    await watch.stop();

    expect(watch.error).toBeUndefined();
    expect(watch.count(WatchEventType.WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE)).toBe(1);
    // The marker came after the initial state (one version of each config) and before anything live.
    const marker = watch.events.findIndex((e) => e.type === WatchEventType.WATCH_EVENT_TYPE_INITIAL_STATE_COMPLETE);
    expect(marker).toBe(3);
    for (const key of keys) {
      const versions = watch.versions(key.configName);
      expect(versions, key.configName).toEqual(range(1, latest.get(key.configName)!));
      expect(new Set(seqs(watch.events, key.configName)).size, key.configName).toBe(versions.length);
      // Every config was written through both processes.
      expect(ackedAtKill.get(key.configName), key.configName).toBeGreaterThan(0);
      expect(writer.acked.get(key.configName)!.length, key.configName).toBeGreaterThan(
        ackedAtKill.get(key.configName)!,
      );
    }
    expect(watch.reconnects.map((e) => e.code)).toContain(status.UNAVAILABLE);
    expect(watcherClient.address).toBe(second.address);
  }, 240_000);
});
