import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { RethinkConnection, Term } from './connection.js';
import { DRIVER_ERRORS, isUnavailable } from './errors.js';
import { sleep } from './promise-helpers.js';
import { META, q, type ConfigRow, type LeaseDoc, type SchemaDoc, type WriteResult } from './queries.js';
import {
  chooseCopy,
  chooseDatabase,
  isQuarantineOf,
  quarantineName,
  schemaId,
  type CopyDecision,
  type TableCopy,
  type TableSpec,
} from './schema.js';

export interface BootstrapOptions {
  readonly db: string;
  readonly schema: readonly TableSpec[];
  /** Replicas per table (shards: 1); undefined leaves the tables as RethinkDB or an operator made them. */
  readonly replicas?: number | undefined;
  /** How long a node may hold the bootstrap lease before others may take it over. */
  readonly leaseSeconds?: number;
  /** Pause between the two reads that must agree before the meta table counts as settled. */
  readonly settleMs?: number;
  /** Longest the whole bootstrap may take, waiting for another node's lease included. */
  readonly deadlineMs?: number;
}

/** Bootstrap found something it must not repair by itself; the message says what and how to fix it. */
export class BootstrapError extends Error {
  override name = 'BootstrapError';
}

const DEFAULT_LEASE_SECONDS = 30;
const DEFAULT_SETTLE_MS = 200;
const POLL_MS = 100;

/**
 * Creates cfgd's database, tables and indexes where they are missing, and
 * keeps several nodes that start at once from creating them twice.
 *
 * RethinkDB does not serialize table creation: two `tableCreate` calls for one
 * name can both succeed, and from then on every query naming the table fails
 * as ambiguous (RethinkDB's own maintainers say that ensuring a table exists
 * needs outside synchronization). So:
 *
 * 1. the database is created if missing; copies of it that hold no table are
 *    dropped (no table can be created in a database while its name is
 *    ambiguous, so an empty copy stays empty);
 * 2. a small meta table is created if missing; copies of it are dropped down
 *    to the smallest id, which is safe because it holds nothing that outlives
 *    a bootstrap: a lease row and a record of the schema in place;
 * 3. the node that inserts the lease row (the primary key lets exactly one
 *    insert win) is the only one that creates tables and indexes, repairs
 *    duplicates, sets replicas, and records the schema it certified (the id of
 *    each table); the others wait for that record;
 * 4. a duplicated data table is repaired under the lease: every copy is
 *    renamed aside, counted, the certified or only non-empty copy is renamed
 *    back and the empty ones dropped. A copy holding documents is never
 *    dropped: when two do, bootstrap refuses with instructions.
 *
 * Duplicates show only in the system tables `rethinkdb.db_config` and
 * `rethinkdb.table_config`, which need an admin user; without them, and on
 * servers that keep no real system tables, the checks are skipped.
 */
export async function bootstrap(connection: RethinkConnection, options: BootstrapOptions, log: Logger): Promise<void> {
  await new Bootstrap(connection, options, log).run();
}

class Bootstrap {
  private readonly db: string;
  private readonly node = randomUUID();
  private readonly wanted: string;
  private readonly deadline: number;
  private systemTablesWarned = false;

  constructor(
    private readonly connection: RethinkConnection,
    private readonly options: BootstrapOptions,
    private readonly log: Logger,
  ) {
    this.db = options.db;
    this.wanted = schemaId(options.schema);
    this.deadline = Date.now() + (options.deadlineMs ?? 2 * 1000 * (options.leaseSeconds ?? DEFAULT_LEASE_SECONDS));
  }

  async run(): Promise<void> {
    await this.ensureDatabaseAndMeta();
    let settled = false;
    for (;;) {
      if (await this.inPlace()) return;
      if (!settled) {
        // The lease is only as exclusive as the meta table is single: settle it, then look again.
        await this.settleMetaTable();
        await this.waitFor(META);
        settled = true;
        continue;
      }
      if (await this.acquireLease()) {
        try {
          await this.apply();
        } finally {
          await this.run_(q.dropLease(this.db, this.node), 'release the bootstrap lease').catch(() => {});
        }
        return;
      }
      if (Date.now() > this.deadline) {
        const lease = await this.run_<LeaseDoc | null>(q.lease(this.db), 'read the bootstrap lease').catch(() => null);
        throw new BootstrapError(
          `bootstrap of RethinkDB database ${this.db} did not finish in time: another node (${lease?.holder ?? 'unknown'}) ` +
            'holds its lease; it expires by itself if that node died',
        );
      }
      await sleep(POLL_MS);
    }
  }

  /**
   * The database, once, and its meta table. A copy of the database created
   * by a node racing this one can show in `db_config` only after this node
   * checked it (servers of a cluster learn of it at different times): then
   * the database is "ambiguous" (or, once an empty copy is dropped, briefly
   * missing) to the next query, and this starts over, settling the copies again.
   */
  private async ensureDatabaseAndMeta(): Promise<void> {
    for (let round = 0; ; round++) {
      await this.ensureDatabase();
      try {
        await this.createTableIfMissing(META);
        return;
      } catch (error: unknown) {
        const raced = isUnavailable(error) && /ambiguous|does not exist/i.test(error.message);
        if (!raced || round >= 10) throw error;
        this.log.info({ err: error, db: this.db }, 'the database changed under bootstrap; settling it again');
        await sleep(POLL_MS);
      }
    }
  }

  /** True when the schema record is this node's schema and every table and index is there, once. */
  private async inPlace(): Promise<boolean> {
    let record: SchemaDoc | null;
    try {
      record = await this.run_<SchemaDoc | null>(q.schemaDoc(this.db), 'read the schema record');
    } catch (error: unknown) {
      // A meta table created a moment ago (or twice, by racing nodes) cannot be read yet.
      if (isUnavailable(error) && /ambiguous|replica|not available|does not exist/i.test(error.message)) return false;
      throw error;
    }
    if (record?.schema !== this.wanted) return false;
    // Copies first: a table that exists twice cannot be asked for its indexes.
    const copies = await this.tableCopies();
    if (copies !== undefined) {
      for (const table of this.options.schema) {
        const rows = copies.filter((row) => row.name === table.name);
        if (rows.length !== 1) return false;
        if (this.options.replicas !== undefined && replicasOf(rows[0]!) !== this.options.replicas) return false;
      }
    }
    const tables = await this.tableNames();
    for (const table of this.options.schema) {
      if (!tables.includes(table.name)) return false;
      const indexes = await this.run_<string[]>(q.indexList(this.db, table.name), `list the indexes of ${table.name}`);
      if (!table.indexes.every((index) => indexes.includes(index))) return false;
    }
    return true;
  }

  private async ensureDatabase(): Promise<void> {
    const { db } = this;
    if (!(await this.run_<string[]>(q.dbList(), 'list databases')).includes(db)) {
      await this.run_(q.dbCreate(db), `create database ${db}`).catch(async (error: unknown) => {
        // Another node created it meanwhile.
        if (!(await this.run_<string[]>(q.dbList(), 'list databases')).includes(db)) throw error;
      });
    }
    for (let round = 0; ; round++) {
      const copies = await this.system<ConfigRow[]>(q.databaseCopies(db), 'list copies of the database');
      if (copies === undefined || copies.length <= 1) return;
      if (round >= 10) throw new BootstrapError(`database ${db} keeps existing ${copies.length} times`);
      const byDatabase = (await this.system<ConfigRow[]>(q.tablesByDatabaseId(), 'list tables by database')) ?? [];
      const decision = chooseDatabase(
        copies.map((copy) => ({ id: copy.id, tables: byDatabase.filter((table) => table.db === copy.id).length })),
      );
      if (decision.kind === 'refuse') {
        throw new BootstrapError(
          `database ${db} exists ${copies.length} times (ids ${copies.map((c) => c.id).join(', ')}) and ${decision.why}: ` +
            "RethinkDB does not serialize database creation across servers. Keep the copy with cfgd's tables and move or " +
            "drop the others (r.db('rethinkdb').table('db_config').get(ID).delete()), then start cfgd again",
        );
      }
      this.log.warn({ db, keep: decision.keep, drop: decision.drop }, 'dropping empty copies of the database');
      for (const id of decision.drop) await this.write(q.dropDatabaseById(id), 'drop an empty copy of the database');
    }
  }

  /**
   * Drops every copy of the meta table but the one with the smallest id, until
   * two reads `settleMs` apart agree that there is one: a copy whose creation
   * raced this node's has appeared by then.
   */
  private async settleMetaTable(): Promise<void> {
    let previous: string | undefined;
    for (let round = 0; round < 50; round++) {
      const copies = await this.tableCopies();
      if (copies === undefined) return;
      const ids = copiesOf(copies, META).sort();
      const keep = ids[0];
      if (ids.length === 1 && keep === previous) return;
      for (const id of ids.slice(1)) {
        this.log.warn({ table: META, id }, 'dropping a duplicate of the meta table');
        await this.write(q.dropTableById(id), 'drop a duplicate of the meta table');
      }
      previous = ids.length === 1 ? keep : undefined;
      await sleep(this.options.settleMs ?? DEFAULT_SETTLE_MS);
    }
    throw new BootstrapError(`the meta table ${this.db}.${META} keeps being created again`);
  }

  /** Inserts the lease row; true when this node holds the lease (an expired lease is taken over). */
  private async acquireLease(): Promise<boolean> {
    const seconds = this.options.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    for (let attempt = 0; attempt < 2; attempt++) {
      const result = await this.run_<WriteResult>(
        q.insertLease(this.db, this.node, seconds),
        'take the bootstrap lease',
      );
      if (result.inserted === 1) return true;
      const lease = await this.run_<LeaseDoc | null>(q.lease(this.db), 'read the bootstrap lease');
      if (lease?.holder === this.node) return true;
      // Remove the lease if its holder let it expire (it died), then try once more.
      const dropped = await this.run_<WriteResult>(q.dropLease(this.db, undefined), 'take over an expired lease');
      if (dropped.deleted !== 1) return false;
      this.log.warn({ holder: lease?.holder }, 'took over an expired bootstrap lease');
    }
    return false;
  }

  /** Under the lease: creates, repairs and configures every table, then records the schema. */
  private async apply(): Promise<void> {
    const record = await this.run_<SchemaDoc | null>(q.schemaDoc(this.db), 'read the schema record');
    const certified: Record<string, string> = {};
    for (const table of this.options.schema) {
      const names = await this.tableNames();
      if (!names.includes(table.name)) {
        const aside = names.filter((name) => isQuarantineOf(table.name, name));
        if (aside.length > 0) {
          throw new BootstrapError(
            `table ${this.db}.${table.name} is missing but copies of it are set aside as ${aside.join(', ')} ` +
              '(an earlier repair found documents in more than one copy): merge them into one table named ' +
              `${table.name}, drop the others, then start cfgd again`,
          );
        }
      }
      await this.createTableIfMissing(table.name);
      const id = await this.repairDuplicates(table.name, record?.tables[table.name]);
      if (id !== undefined) certified[table.name] = id;
      await this.waitFor(table.name);
      const indexes = await this.run_<string[]>(q.indexList(this.db, table.name), `list the indexes of ${table.name}`);
      for (const index of table.indexes) {
        if (indexes.includes(index)) continue;
        await this.run_(q.indexCreate(this.db, table.name, index), `create index ${index}`).catch(
          async (error: unknown) => {
            const now = await this.run_<string[]>(
              q.indexList(this.db, table.name),
              `list the indexes of ${table.name}`,
            );
            if (!now.includes(index)) throw error;
          },
        );
      }
      for (const index of table.indexes)
        await this.run_(q.indexWait(this.db, table.name, index), `wait for index ${index}`);
    }
    await this.configureReplicas();
    await this.run_(
      q.writeSchemaDoc(this.db, { id: 'schema', schema: this.wanted, tables: certified }),
      'record the schema in place',
    );
    this.log.info(
      { db: this.db, tables: Object.keys(certified).length || this.options.schema.length },
      'RethinkDB schema in place',
    );
  }

  /**
   * Makes `table` exist once. Returns the id of the one copy (undefined when
   * the system tables cannot be read).
   */
  private async repairDuplicates(table: string, certified: string | undefined): Promise<string | undefined> {
    const copies = await this.tableCopies();
    if (copies === undefined) return undefined;
    const ids = copiesOf(copies, table);
    if (ids.length === 1) return ids[0];
    if (ids.length === 0)
      throw new BootstrapError(`table ${this.db}.${table} is listed but not in rethinkdb.table_config`);
    this.log.warn({ table, copies: ids }, 'the table exists more than once; repairing');
    // Rename every copy aside first: while copies share the name no query can reach any of them,
    // and once renamed none can be written by name, so what is counted stays what it is.
    for (const id of ids)
      await this.write(q.renameTable(id, quarantineName(table, id)), `set aside a copy of ${table}`);
    const counted: TableCopy[] = [];
    for (const id of ids) {
      const aside = quarantineName(table, id);
      await this.waitFor(aside);
      counted.push({ id, empty: await this.run_<boolean>(q.isEmpty(this.db, aside), `count a copy of ${table}`) });
    }
    const decision: CopyDecision = chooseCopy(counted, certified);
    if (decision.kind === 'refuse') {
      throw new BootstrapError(
        `table ${this.db}.${table} existed ${ids.length} times and ${decision.why}; the copies are set aside as ` +
          `${ids.map((id) => quarantineName(table, id)).join(', ')}: merge them into one table named ${table}, drop the ` +
          'others, then start cfgd again',
      );
    }
    // RethinkDB refuses a rename to a name in use: if another copy appeared meanwhile, this fails, and so does
    // bootstrap, leaving every copy set aside and none dropped; the next start repairs again.
    await this.write(q.renameTable(decision.keep, table), `restore the kept copy of ${table}`);
    for (const id of decision.drop) await this.write(q.dropTableById(id), `drop an empty copy of ${table}`);
    this.log.warn({ table, kept: decision.keep, dropped: decision.drop }, 'duplicate table repaired');
    return decision.keep;
  }

  private async configureReplicas(): Promise<void> {
    const { replicas } = this.options;
    if (replicas === undefined) return;
    const copies = await this.tableCopies();
    for (const table of [META, ...this.options.schema.map((t) => t.name)]) {
      const row = copies?.find((copy) => copy.name === table);
      if (row !== undefined && replicasOf(row) === replicas) continue;
      await this.run_(q.reconfigure(this.db, table, replicas), `set ${replicas} replicas for ${table}`);
      await this.waitFor(table);
    }
  }

  private async createTableIfMissing(table: string): Promise<void> {
    if ((await this.tableNames()).includes(table)) return;
    await this.run_(q.tableCreate(this.db, table), `create table ${table}`).catch(async (error: unknown) => {
      if (!(await this.tableNames()).includes(table)) throw error;
    });
  }

  private tableNames(): Promise<string[]> {
    return this.run_<string[]>(q.tableList(this.db), 'list tables');
  }

  /**
   * Waits until the table answers reads: a table created or reconfigured a
   * moment ago refuses queries until its primary replica is ready. (Polls
   * with a cheap read rather than `table.wait()`, which not every
   * RethinkDB-compatible server implements.)
   */
  private async waitFor(table: string): Promise<void> {
    for (let backoff = 20; ; backoff = Math.min(backoff * 2, 500)) {
      try {
        await this.run_(q.isEmpty(this.db, table), `wait for table ${table}`);
        return;
      } catch (error: unknown) {
        if (!isUnavailable(error) || Date.now() > this.deadline) throw error;
        await sleep(backoff);
      }
    }
  }

  /** This database's rows of rethinkdb.table_config, or undefined when they cannot be known. */
  private async tableCopies(): Promise<ConfigRow[] | undefined> {
    const rows = await this.system<ConfigRow[]>(q.tableCopies(this.db), 'list copies of the tables');
    // A server that keeps no real system tables (a RethinkDB imitation) answers with none, though tables exist.
    if (rows !== undefined && rows.length === 0 && (await this.tableNames()).length > 0) {
      return this.skipChecks("the server's rethinkdb.table_config does not list its tables");
    }
    return rows;
  }

  /** Runs a query on a system table; undefined when this user may not read them. */
  private async system<T>(term: Term, what: string): Promise<T | undefined> {
    try {
      return await this.run_<T>(term, what);
    } catch (error: unknown) {
      if (error instanceof DRIVER_ERRORS.ReqlRuntimeError && /permission/i.test(error.message)) {
        return this.skipChecks("cfgd's user may not read rethinkdb.table_config (an admin user may)");
      }
      throw error;
    }
  }

  private skipChecks(why: string): undefined {
    if (!this.systemTablesWarned) {
      this.systemTablesWarned = true;
      this.log.warn(
        { db: this.db },
        `${why}: duplicate tables left by nodes that started at once cannot be detected or repaired`,
      );
    }
    return undefined;
  }

  /** Runs a write on a system table, which reports failure in its result rather than as an error. */
  private async write(term: Term, what: string): Promise<void> {
    const result = await this.run_<WriteResult>(term, what);
    if ((result.errors ?? 0) > 0)
      throw new BootstrapError(`could not ${what}: ${result.first_error ?? 'unknown error'}`);
  }

  private run_<T>(term: Term, what: string): Promise<T> {
    return this.connection.run<T>(term, what);
  }
}

/** Replicas of a one-shard table; undefined for a table with several shards. */
function replicasOf(row: ConfigRow): number | undefined {
  return row.shards?.length === 1 ? row.shards[0]?.replicas.length : undefined;
}

function copiesOf(rows: readonly ConfigRow[], table: string): string[] {
  return rows.filter((row) => row.name === table).map((row) => row.id);
}
