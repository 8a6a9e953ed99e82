/**
 * cfgd on a real two-server RethinkDB cluster (tables with 2 replicas), one
 * cfgd node on each server, writers and watchers on both, while one server
 * is frozen (SIGSTOP) and the other killed (SIGKILL) and restarted. What
 * each write was answered is checked against what is stored, and every
 * watcher against the stored history. Runs in `npm run test:rethinkdb`.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import rethinkdb from 'rethinkdb';
import { META } from '../../src/store/rethinkdb/queries.js';
import { SCHEMA } from '../../src/store/rethinkdb/schema.js';
import { afterAll, describe, expect, it } from 'vitest';
import type { WatchResponse } from '../../generated/cfgd/v1/config_service.js';
import { statusDetails, TestClient } from '../helpers/client.js';
import { RethinkdbServer } from '../helpers/rethinkdb-server.js';
import { freshDatabase } from '../helpers/rethinkdb.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SseClient } from '../helpers/sse.js';
import { eventually } from '../helpers/wait.js';

/** Every table cfgd makes: the meta table and the schema's. */
const EVERY_TABLE = [META, ...SCHEMA.map((table) => table.name)].sort();

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const TIMEOUT_MS = 2000;

/** What a writer was told about one of its writes. */
type Outcome =
  | { readonly kind: 'acknowledged'; readonly version: number }
  | { readonly kind: 'failed'; readonly reason: string }
  | { readonly kind: 'unknown'; readonly version: number };

interface Attempt {
  readonly writer: number;
  readonly seq: number;
  readonly outcome: Outcome;
}

async function cluster(): Promise<[RethinkdbServer, RethinkdbServer]> {
  const first = await RethinkdbServer.start({ name: 'first' });
  cleanups.push(() => first.stop());
  const second = await RethinkdbServer.start({ name: 'second', join: first.clusterPort });
  cleanups.push(() => second.stop());
  const connection = await rethinkdb.connect({ host: '127.0.0.1', port: first.port });
  await eventually(async () => {
    expect(await rethinkdb.db('rethinkdb').table('server_status').count().run(connection)).toBe(2);
  }, 30_000);
  await connection.close();
  return [first, second];
}

function cfgdOn(server: RethinkdbServer, db: string): Promise<TestServer> {
  return startTestServer({
    store: { kind: 'rethinkdb', host: '127.0.0.1', port: server.port, db, timeoutMs: TIMEOUT_MS, replicas: 2 },
  });
}

describe('a two-server RethinkDB cluster losing a server while cfgd writes and watches on both', () => {
  it('loses no acknowledged write, applies no failed one, and every watcher gets every version once', async () => {
    const [first, second] = await cluster();
    const db = freshDatabase('cluster');
    // Both cfgd nodes bootstrap the fresh database at once, through different servers.
    const [nodeA, nodeB] = await Promise.all([cfgdOn(first, db), cfgdOn(second, db)]);
    cleanups.push(
      () => nodeA.stop(),
      () => nodeB.stop(),
    );
    const admin = await rethinkdb.connect({ host: '127.0.0.1', port: second.port });
    cleanups.push(() => admin.close());
    const tables = await rethinkdb.db('rethinkdb').table('table_config').filter({ db }).coerceTo('array').run(admin);
    expect(tables.map((t: { name: string }) => t.name).sort()).toEqual(EVERY_TABLE);
    for (const table of tables as { shards: { replicas: string[] }[] }[]) {
      expect(table.shards.map((shard) => shard.replicas.length)).toEqual([2]);
    }

    const key = { userId: 'cluster', configName: 'c' };
    const clients = [nodeA.client(), nodeB.client()];
    // Watchers on both nodes, from the start, over gRPC and (on node B) SSE.
    const watched: number[][] = [];
    const streamErrors: ServiceError[] = [];
    for (const client of clients) {
      const versions: number[] = [];
      watched.push(versions);
      const stream = client.watch({ ...key, startVersion: 0 });
      stream.on('data', (event: WatchResponse) => event.config && versions.push(event.config.version));
      stream.on('error', (error: ServiceError) => streamErrors.push(error));
      cleanups.push(() => stream.cancel());
    }
    const { client: sse } = await SseClient.open(
      nodeB.cfgd.httpPort,
      `/v1/users/${key.userId}/configs/${key.configName}:watch?start_version=0`,
    );
    cleanups.push(() => sse.close());

    // Two sequential writers per node; each write's values name the writer and its sequence number.
    const attempts: Attempt[] = [];
    let acknowledged = 0;
    let stop = false;
    const writers = [0, 1, 2, 3].map(async (writer) => {
      const client = new TestClient(writer < 2 ? nodeA.cfgd.grpcPort : nodeB.cfgd.grpcPort);
      for (let seq = 0; !stop; seq++) {
        let outcome: Outcome;
        try {
          const response = await client.put({ ...key, values: { writer, seq } });
          outcome = { kind: 'acknowledged', version: response.config!.version };
          acknowledged++;
        } catch (error: unknown) {
          const serviceError = error as ServiceError;
          const info = statusDetails(serviceError).errorInfo;
          outcome =
            info?.reason === 'WRITE_OUTCOME_UNKNOWN'
              ? { kind: 'unknown', version: Number(info.metadata.version) }
              : { kind: 'failed', reason: `${status[serviceError.code]} ${info?.reason ?? ''}` };
          await sleep(50);
        }
        attempts.push({ writer, seq, outcome });
      }
      client.close();
    });
    const acknowledgedSoon = async (more: number, within: number): Promise<void> => {
      const target = acknowledged + more;
      const deadline = Date.now() + within;
      while (acknowledged < target) {
        if (Date.now() > deadline) throw new Error(`writes did not resume: ${acknowledged} of ${target} acknowledged`);
        await sleep(20);
      }
    };

    await acknowledgedSoon(40, 20_000);
    // A frozen server answers nothing: writes time out (or are in doubt) until it is resumed.
    second.freeze();
    await sleep(2 * TIMEOUT_MS);
    second.resume();
    await acknowledgedSoon(40, 30_000);
    // A killed server drops every connection; it comes back with its data.
    await first.kill();
    await sleep(2 * TIMEOUT_MS);
    await first.launch();
    await acknowledgedSoon(40, 60_000);
    stop = true;
    await Promise.all(writers);

    // What is stored: contiguous versions, each holding one attempt's values.
    const history: { writer: number; seq: number }[] = [];
    await eventually(async () => {
      history.length = 0;
      let pageToken = '';
      do {
        const page = await clients[1]!.history({ ...key, pageSize: 1000, pageToken });
        for (const entry of page.entries) {
          expect(entry.version).toBe(history.length + 1);
          const config = (await clients[1]!.get({ ...key, version: entry.version })).config!;
          history.push(config.values as { writer: number; seq: number });
        }
        pageToken = page.nextPageToken;
      } while (pageToken !== '');
    }, 30_000);
    const final = history.length;
    const versionOf = new Map<string, number>();
    history.forEach((values, i) => {
      const id = `${values.writer}:${values.seq}`;
      expect(versionOf.has(id), `${id} stored twice`).toBe(false);
      versionOf.set(id, i + 1);
    });

    const counts = { acknowledged: 0, failed: 0, unknown: 0, unknownStored: 0 };
    for (const { writer, seq, outcome } of attempts) {
      const stored = versionOf.get(`${writer}:${seq}`);
      switch (outcome.kind) {
        case 'acknowledged':
          counts.acknowledged++;
          expect(stored, `acknowledged ${writer}:${seq}`).toBe(outcome.version);
          break;
        case 'failed':
          counts.failed++;
          expect(stored, `failed ${writer}:${seq} (${outcome.reason}) was stored`).toBeUndefined();
          break;
        case 'unknown':
          counts.unknown++;
          if (stored !== undefined) {
            counts.unknownStored++;
            expect(stored, `unknown ${writer}:${seq}`).toBe(outcome.version);
          }
          break;
      }
    }
    // A writer's stored writes are in the order it made them: nothing in doubt lands after a later write.
    for (const writer of [0, 1, 2, 3]) {
      const versions = attempts
        .filter((a) => a.writer === writer)
        .map((a) => versionOf.get(`${a.writer}:${a.seq}`))
        .filter((v): v is number => v !== undefined);
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
    }
    expect(versionOf.size).toBe(final);
    expect(counts.failed + counts.unknown).toBeGreaterThan(0);

    // Every watcher, on either node, got every version exactly once, in order, through both outages.
    await eventually(() => {
      for (const versions of watched) expect(versions.at(-1)).toBe(final);
      // Proto3 JSON writes 64-bit integers as strings.
      expect(Number(sse.messages().at(-1)?.config.version)).toBe(final);
    }, 30_000);
    for (const versions of watched) expect(versions).toEqual(range(1, final));
    expect(sse.messages().map((m: { config: { version: string } }) => Number(m.config.version))).toEqual(
      range(1, final),
    );
    expect(streamErrors).toEqual([]);
    console.log(
      `cluster: ${final} versions; ${counts.acknowledged} acknowledged, ${counts.failed} failed (none stored), ` +
        `${counts.unknown} outcome unknown (${counts.unknownStored} of them stored)`,
    );
  }, 240_000);
});
