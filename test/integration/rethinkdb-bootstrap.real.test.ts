/**
 * Bootstrap on a real RethinkDB, where concurrent `tableCreate` calls for one
 * name all succeed and leave duplicate tables (reqlite cannot race them, and
 * duplicates show only in the real server's rethinkdb.table_config).
 * Runs in `npm run test:rethinkdb`.
 */
import { pino } from 'pino';
import rethinkdb from 'rethinkdb';
import { META } from '../../src/store/rethinkdb/queries.js';
import { SCHEMA } from '../../src/store/rethinkdb/schema.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configUuid, planWrite } from '../../src/domain/index.js';
import { BootstrapError } from '../../src/store/rethinkdb/bootstrap.js';
import { versionId } from '../../src/store/rethinkdb/queries.js';
import { RethinkDbStore } from '../../src/store/rethinkdb/rethinkdb-store.js';
import { freshDatabase, rethinkdbIsReal, rethinkStoreConfig } from '../helpers/rethinkdb.js';

/** Every table cfgd makes: the meta table and the schema's. */
const EVERY_TABLE = [META, ...SCHEMA.map((table) => table.name)].sort();

// The driver's typings lack much of ReQL; the test drives the server directly in a few places.

const r: any = rethinkdb;
const log = pino({ level: 'silent' });
let connection: rethinkdb.Connection;

beforeAll(async () => {
  expect(rethinkdbIsReal()).toBe(true);
  const { host, port } = rethinkStoreConfig('unused');
  connection = await rethinkdb.connect({ host, port });
});
afterAll(async () => connection.close());

const run = <T>(term: { run(c: rethinkdb.Connection): Promise<unknown> }): Promise<T> =>
  term.run(connection) as Promise<T>;

/** The ids of every table named `table` in `db`, from RethinkDB's own record. */
function copies(db: string, table: string): Promise<string[]> {
  return run<string[]>(r.db('rethinkdb').table('table_config').filter({ db, name: table })('id').coerceTo('array'));
}

/** Creates `table` in `db` four times at once until RethinkDB has made at least two copies. */
async function duplicate(db: string, table: string): Promise<string[]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    await Promise.allSettled([1, 2, 3, 4].map(() => run(r.db(db).tableCreate(table))));
    const ids = await copies(db, table);
    if (ids.length >= 2) return ids;
    await run(r.db(db).tableDrop(table));
  }
  throw new Error(`could not make RethinkDB create ${table} twice`);
}

/**
 * Makes `config_versions` exist several times, one copy holding a stored
 * version of `key`: the table holding it is renamed to the name while other
 * copies are being created (RethinkDB checks names before a creation
 * completes, so both succeed), as a node of an older cfgd could have done.
 * Returns the id of the copy holding the version.
 */
async function duplicateHolding(
  db: string,
  key: { userId: string; configName: string },
  values: object,
): Promise<string> {
  const plan = planWrite(key, undefined, { values: values as never, author: 'an older cfgd', now: new Date() });
  if (plan.kind !== 'create') throw new Error('expected a version');
  for (let attempt = 0; attempt < 20; attempt++) {
    const holder = `holder${attempt}`;
    await run(r.db(db).tableCreate(holder));
    await run(
      r
        .db(db)
        .table(holder)
        .insert({
          id: versionId(configUuid(key), 1),
          config_id: configUuid(key),
          user_id: key.userId,
          config_name: key.configName,
          version: 1,
          values_json: JSON.stringify(values),
          changes_json: JSON.stringify(plan.next.audit.changes),
          author: plan.next.audit.author,
          created_at: Date.now(),
          write_id: 'older',
        }),
    );
    const [id] = await copies(db, holder);
    await Promise.allSettled([
      run(r.db(db).tableCreate('config_versions')),
      run(r.db(db).tableCreate('config_versions')),
      run(r.db('rethinkdb').table('table_config').get(id).update({ name: 'config_versions' })),
    ]);
    const ids = await copies(db, 'config_versions');
    if (ids.length >= 2 && ids.includes(id!)) return id!;
    for (const other of ids) await run(r.db('rethinkdb').table('table_config').get(other).delete());
    if (!ids.includes(id!)) await run(r.db(db).tableDrop(holder));
  }
  throw new Error('could not make RethinkDB create config_versions beside a copy holding documents');
}

describe('RethinkDB bootstrap on a real server', () => {
  it('several nodes starting at once on a fresh database leave every table exactly once', async () => {
    for (let round = 0; round < 4; round++) {
      const db = freshDatabase('race');
      const stores = await Promise.all([1, 2, 3, 4].map(() => RethinkDbStore.open(rethinkStoreConfig(db), log)));
      for (const table of ['config_versions', 'config_heads', 'cfgd_meta'])
        expect(await copies(db, table)).toHaveLength(1);
      expect(
        await run<unknown[]>(r.db('rethinkdb').table('db_config').filter({ name: db }).coerceTo('array')),
      ).toHaveLength(1);
      // And every node can use them.
      const key = { userId: 'race', configName: `c${round}` };
      for (const [i, store] of stores.entries()) {
        await store.write(key, (current) => planWrite(key, current, { values: { i }, author: 't', now: new Date() }));
      }
      expect((await stores[0]!.latest(key))?.version).toBe(4);
      for (const store of stores) await store.close();
    }
  });

  it('repairs duplicates left by an earlier, uncoordinated bootstrap, keeping the copy that holds documents', async () => {
    const db = freshDatabase('repair');
    await run(r.dbCreate(db));
    const key = { userId: 'repair', configName: 'kept' };
    const holder = await duplicateHolding(db, key, { kept: true });
    const headCopies = await duplicate(db, 'config_heads');
    // Whatever the ids: the choice is by content, so the documents survive.
    const store = await RethinkDbStore.open(rethinkStoreConfig(db), log);
    expect(await copies(db, 'config_versions')).toEqual([holder]);
    expect(await copies(db, 'config_heads')).toHaveLength(1);
    expect(headCopies).toContain((await copies(db, 'config_heads'))[0]);
    expect((await store.latest(key))?.values).toEqual({ kept: true });
    // Nothing is left set aside: the empty copies were dropped.
    expect((await run<string[]>(r.db(db).tableList())).sort()).toEqual(EVERY_TABLE);
    await store.close();
  });

  it('refuses to start, and creates nothing, while copies of a table holding documents are set aside', async () => {
    // What a repair leaves when documents are in two copies (which one server cannot produce, as it
    // serializes renames; the choice itself is unit-tested): both copies set aside, none dropped.
    const db = freshDatabase('refuse');
    await run(r.dbCreate(db));
    const aside = ['config_versions__dup_0a0000000000', 'config_versions__dup_0b0000000000'];
    for (const name of aside) {
      await run(r.db(db).tableCreate(name));
      await run(r.db(db).table(name).insert({ id: name }));
    }
    const refused = await RethinkDbStore.open(rethinkStoreConfig(db), log).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(BootstrapError);
    expect((refused as Error).message).toMatch(
      /config_versions is missing but copies of it are set aside as config_versions__dup_0a0000000000, config_versions__dup_0b0000000000/,
    );
    expect(await copies(db, 'config_versions')).toEqual([]);
    for (const name of aside) expect(await run<number>(r.db(db).table(name).count())).toBe(1);
  });
});
