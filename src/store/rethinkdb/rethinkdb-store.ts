import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  CfgdError,
  configUuid,
  type AuditEntry,
  type ConfigKey,
  type ConfigVersion,
  type WritePlan,
} from '../../domain/index.js';
import type { ConfigStore, StoreStats, SubscriptionScope, Unsubscribe, Wake } from '../store.js';
import { toAuditEntry, toConfigVersion } from '../stored-row.js';
import { keyId, Subscribers } from '../subscribers.js';
import { isUnavailable, RethinkConnection, type Cursor, type RethinkDbOptions } from './connection.js';
import {
  HEADS,
  HEADS_BY_USER,
  q,
  versionId,
  VERSIONS,
  type HeadDoc,
  type VersionDoc,
  type WriteResult,
} from './queries.js';

/** Points between the database calls of a write, where tests inject failures. */
export type WriteStep = 'before-read' | 'before-insert' | 'after-insert' | 'after-head';

export interface RethinkDbStoreOptions extends RethinkDbOptions {
  /** Test hook: called at each step of a write; a throw there simulates a crash at that point. */
  readonly faults?: ((step: WriteStep) => void | Promise<void>) | undefined;
}

/** How many versions one read looks ahead of the head. */
const PROBE = 8;
/** Attempts before a write under extreme contention gives up with UNAVAILABLE. */
const MAX_ATTEMPTS = 1000;

/**
 * The cluster backend: any number of cfgd processes share one RethinkDB
 * database. RethinkDB is atomic per document only, so the write path is:
 *
 * 1. read the latest version: the head (a hint) and the versions after it;
 * 2. plan the write against it (pure; diff, compare-and-set);
 * 3. insert the new version document, whose primary key is (config, version),
 *    with `conflict: 'error'` — the commit point and the compare-and-set:
 *    of two writers of version N one wins, the other re-reads and retries;
 * 4. roll the head forward (never back).
 *
 * A crash before 3 writes nothing; after 3 the version is complete and
 * visible, and a stale head only makes readers look a few documents further.
 * Watch is fed by one changefeed per process on the versions table, used as a
 * wake-up: what a watcher delivers is always read back from the table.
 */
export class RethinkDbStore implements ConfigStore {
  private readonly connection: RethinkConnection;
  private readonly db: string;
  private readonly subscribers = new Subscribers();
  private readonly writeQueues = new Map<string, Promise<void>>();
  private readonly log: Logger;
  private feed: Cursor | undefined;
  private feedLoop: Promise<void> | undefined;
  private feedReady: Deferred = deferred();
  private closed = false;

  private constructor(
    private readonly options: RethinkDbStoreOptions,
    log: Logger,
  ) {
    this.log = log;
    this.db = options.db;
    this.connection = new RethinkConnection(options, log);
  }

  /** Connects and creates the database, tables and index if they are missing (safe to race). */
  static async open(options: RethinkDbStoreOptions, log: Logger): Promise<RethinkDbStore> {
    const store = new RethinkDbStore(options, log);
    try {
      await store.bootstrap();
    } catch (error: unknown) {
      await store.close();
      throw error;
    }
    return store;
  }

  private async bootstrap(): Promise<void> {
    const { db } = this;
    const run = <T>(term: Parameters<RethinkConnection['run']>[0], what: string) => this.connection.run<T>(term, what);
    // Create what is missing; when another node wins a race to create it, check that it exists.
    const ensure = async (exists: () => Promise<boolean>, create: () => Promise<unknown>): Promise<void> => {
      if (await exists()) return;
      try {
        await create();
      } catch (error: unknown) {
        if (!(await exists())) throw error;
      }
    };
    await ensure(
      async () => (await run<string[]>(q.dbList(), 'list databases')).includes(db),
      () => run(q.dbCreate(db), 'create database'),
    );
    for (const table of [VERSIONS, HEADS]) {
      await ensure(
        async () => (await run<string[]>(q.tableList(db), 'list tables')).includes(table),
        () => run(q.tableCreate(db, table), `create table ${table}`),
      );
    }
    await ensure(
      async () => (await run<string[]>(q.indexList(db, HEADS), 'list indexes')).includes(HEADS_BY_USER),
      () => run(q.indexCreate(db, HEADS, HEADS_BY_USER), `create index ${HEADS_BY_USER}`),
    );
    await run(q.indexWait(db, HEADS, HEADS_BY_USER), `wait for index ${HEADS_BY_USER}`);
  }

  async write(key: ConfigKey, plan: (current: ConfigVersion | undefined) => WritePlan): Promise<WritePlan> {
    // Writes to one config from this process take turns, so that they do not race each other for
    // the same version; the insert still settles races with other processes.
    const id = keyId(key);
    const previous = this.writeQueues.get(id) ?? Promise.resolve();
    const result = previous.then(() => this.writeOnce(key, plan));
    const settled = result.then(
      () => {},
      () => {},
    );
    this.writeQueues.set(id, settled);
    void settled.then(() => {
      if (this.writeQueues.get(id) === settled) this.writeQueues.delete(id);
    });
    // The timeout bounds the whole write, waiting in the queue included: during an outage a caller
    // learns within it, however many writes are queued before its own. A write that times out may
    // still commit later, as any write whose answer was lost.
    return withTimeout(result, this.options.timeoutMs, 'the write did not complete in time');
  }

  private async writeOnce(key: ConfigKey, plan: (current: ConfigVersion | undefined) => WritePlan): Promise<WritePlan> {
    const configId = configUuid(key);
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      await this.options.faults?.('before-read');
      const decision = plan(await this.readLatest(key));
      if (decision.kind === 'unchanged') return decision;
      const doc = toDoc(configId, decision.next);
      await this.options.faults?.('before-insert');
      if (!(await this.commit(doc))) {
        // Another writer took this version: back off a little, re-read and plan again.
        await sleep(Math.random() * Math.min(attempt, 10));
        continue;
      }
      await this.options.faults?.('after-insert');
      try {
        const head = { id: configId, user_id: key.userId, config_name: key.configName, version: doc.version };
        await this.rollHead(head);
      } catch (error: unknown) {
        // The version is committed; the head is only a hint that readers roll forward themselves.
        this.log.warn({ err: error, version: doc.version }, 'could not roll the head forward');
      }
      await this.options.faults?.('after-head');
      return decision;
    }
    throw new CfgdError('unavailable', 'WRITE_CONTENTION', 'too many concurrent writes to this config; retry');
  }

  /**
   * Moves the head forward, creating it for a config's first version. (A
   * replace returning a document inserts a missing one on RethinkDB, but some
   * compatible servers skip missing documents, so creation is its own insert.)
   */
  private async rollHead(head: HeadDoc): Promise<void> {
    const what = 'roll the head forward';
    const rolled = await this.connection.run<WriteResult>(q.rollHead(this.db, head), what);
    if (rolled.skipped !== 1) return;
    const created = await this.connection.run<WriteResult>(q.insertHead(this.db, head), 'create the head');
    // Another writer created it meanwhile: move theirs forward (never back).
    if (created.inserted !== 1) await this.connection.run<WriteResult>(q.rollHead(this.db, head), what);
  }

  /** Inserts a version; true when this insert committed it, false when another writer holds it. */
  private async commit(doc: VersionDoc): Promise<boolean> {
    let result: WriteResult;
    try {
      result = await this.connection.run<WriteResult>(q.insertVersion(this.db, doc), 'insert a version');
    } catch (error: unknown) {
      if (!isUnavailable(error)) throw error;
      // Indeterminate: the insert may have been applied before the connection broke. Find out.
      const stored = await this.connection
        .run<VersionDoc | null>(q.version(this.db, doc.id), 'check an interrupted insert')
        .catch(() => undefined);
      // Unknown, or absent (an insert still in flight may yet land): report the failure, unacknowledged.
      if (stored === undefined || stored === null) throw error;
      return stored.write_id === doc.write_id;
    }
    if (result.inserted === 1) return true;
    if (result.errors && /Duplicate primary key/i.test(result.first_error ?? '')) return false;
    throw new Error(`inserting a version failed: ${result.first_error ?? JSON.stringify(result)}`);
  }

  async latest(key: ConfigKey): Promise<ConfigVersion | undefined> {
    return this.readLatest(key);
  }

  /** The latest version: start at the head and look ahead until a version is missing. */
  private async readLatest(key: ConfigKey): Promise<ConfigVersion | undefined> {
    const configId = configUuid(key);
    const head = await this.connection.run<HeadDoc | null>(q.head(this.db, configId), 'read the head');
    return this.readLatestFrom(key, configId, head?.version ?? 0);
  }

  private async readLatestFrom(key: ConfigKey, configId: string, from: number): Promise<ConfigVersion | undefined> {
    let latest: VersionDoc | undefined;
    // One read covers the head's version and the look-ahead; usually it finds the head alone.
    for (let next = Math.max(from, 1); ; ) {
      const found = await this.readRun(configId, next, PROBE);
      if (from > 0 && latest === undefined && found.length === 0) {
        throw new Error(`the head of ${configId} points at missing version ${from}`);
      }
      if (found.length > 0) latest = found.at(-1);
      if (found.length < PROBE) return latest && toConfigVersion(key, latest);
      next += found.length;
    }
  }

  /** Up to `count` consecutive versions from `from`, stopping at the first missing one. */
  private async readRun(configId: string, from: number, count: number): Promise<VersionDoc[]> {
    const ids = Array.from({ length: count }, (_, i) => versionId(configId, from + i));
    const docs = await this.connection.run<(VersionDoc | null)[]>(q.versionsById(this.db, ids), 'read versions');
    const gap = docs.indexOf(null);
    return (gap === -1 ? docs : docs.slice(0, gap)) as VersionDoc[];
  }

  async version(key: ConfigKey, version: number): Promise<ConfigVersion | undefined> {
    const doc = await this.connection.run<VersionDoc | null>(
      q.version(this.db, versionId(configUuid(key), version)),
      'read a version',
    );
    return doc === null ? undefined : toConfigVersion(key, doc);
  }

  async versionsAfter(key: ConfigKey, after: number, limit: number): Promise<ConfigVersion[]> {
    const configId = configUuid(key);
    const result: ConfigVersion[] = [];
    // Versions have no gaps: read runs of growing length until one ends early or the limit is reached.
    for (let chunk = PROBE; result.length < limit; chunk = Math.min(chunk * 2, 256)) {
      const count = Math.min(chunk, limit - result.length);
      const docs = await this.readRun(configId, after + result.length + 1, count);
      result.push(...docs.map((doc) => toConfigVersion(key, doc)));
      if (docs.length < count) break;
    }
    return result;
  }

  async auditEntries(key: ConfigKey, from: number, limit: number): Promise<AuditEntry[]> {
    const configId = configUuid(key);
    const first = Math.max(from, 1);
    const result: AuditEntry[] = [];
    for (let chunk = PROBE; result.length < limit; chunk = Math.min(chunk * 2, 256)) {
      const count = Math.min(chunk, limit - result.length);
      const ids = Array.from({ length: count }, (_, i) => versionId(configId, first + result.length + i));
      const docs = await this.connection.run<Omit<VersionDoc, 'values_json'>[]>(q.auditById(this.db, ids), 'read history');
      // Missing versions are filtered out; versions have no gaps, so the run ends at the first one.
      const run = docs.filter((doc, i) => doc.version === first + result.length + i);
      result.push(...run.map(toAuditEntry));
      if (run.length < count) break;
    }
    return result;
  }

  async listLatest(userId: string): Promise<ConfigVersion[]> {
    const heads = await this.connection.run<HeadDoc[]>(q.headsOfUser(this.db, userId), 'list configs');
    // Heads are hints that may lag a commit; each read looks ahead from its head like `latest`.
    const latest = await Promise.all(
      heads.map((head) => this.readLatestFrom({ userId, configName: head.config_name }, head.id, head.version)),
    );
    return latest
      .filter((version): version is ConfigVersion => version !== undefined)
      .sort((a, b) => (a.key.configName < b.key.configName ? -1 : a.key.configName > b.key.configName ? 1 : 0));
  }

  async subscribe(scope: SubscriptionScope, wake: Wake): Promise<Unsubscribe> {
    const unsubscribe = this.subscribers.add(scope, wake);
    try {
      this.feedLoop ??= this.runFeed();
      await withTimeout(this.feedReady.promise, this.options.timeoutMs, 'the change feed is not running');
    } catch (error: unknown) {
      unsubscribe();
      throw error;
    }
    return unsubscribe;
  }

  stats(): StoreStats {
    return { subscriptions: this.subscribers.size, changefeeds: this.feed === undefined ? 0 : 1 };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.subscribers.clear();
    // Closing the connection ends the feed (its pending read fails). Closing the cursor first would
    // leave that read pending for ever.
    this.feed = undefined;
    await this.connection.close();
    await this.feedLoop;
  }

  /**
   * Keeps one changefeed open for the whole process, whatever the number of
   * watchers, and reopens it after any failure. A feed can drop changes, so
   * whenever it (re)starts or reports an error every watcher is woken to
   * re-read from the table.
   */
  private async runFeed(): Promise<void> {
    let backoff = 50;
    let restarted = false;
    while (!this.closed) {
      try {
        const feed = await this.connection.feed(q.versionFeed(this.db), 'open the change feed');
        if (this.closed) break;
        this.feed = feed;
        this.feedReady.resolve();
        backoff = 50;
        if (restarted) {
          this.log.info('change feed reopened');
          this.subscribers.wakeAll();
        }
        for (;;) {
          const row = (await feed.next()) as { new_val?: { user_id?: string; config_name?: string }; error?: string };
          if (row.error !== undefined) {
            this.log.warn({ error: row.error }, 'change feed reported lost changes');
            this.subscribers.wakeAll();
          } else if (row.new_val?.user_id !== undefined && row.new_val.config_name !== undefined) {
            this.subscribers.wake(row.new_val.user_id, row.new_val.config_name);
          }
        }
      } catch (error: unknown) {
        if (this.closed) break;
        this.feed = undefined;
        if (this.feedReady.settled) this.feedReady = deferred();
        restarted = true;
        this.log.warn({ err: error }, 'change feed lost; reopening');
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
    this.feed = undefined;
  }
}

function toDoc(configId: string, version: ConfigVersion): VersionDoc {
  return {
    id: versionId(configId, version.version),
    config_id: configId,
    user_id: version.key.userId,
    config_name: version.key.configName,
    version: version.version,
    values_json: JSON.stringify(version.values),
    changes_json: JSON.stringify(version.audit.changes),
    author: version.audit.author,
    created_at: version.audit.createdAt.getTime(),
    write_id: randomUUID(),
  };
}

interface Deferred {
  readonly promise: Promise<void>;
  readonly settled: boolean;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  const d = {
    promise,
    settled: false,
    resolve: () => {
      d.settled = true;
      resolve();
    },
  };
  return d;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new CfgdError('unavailable', 'DATABASE_UNAVAILABLE', `the database is unavailable: ${what}`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
