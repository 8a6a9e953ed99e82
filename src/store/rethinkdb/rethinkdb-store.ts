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
import { RethinkConnection, type Cursor, type RethinkDbOptions } from './connection.js';
import { DatabaseUnavailableError, isUnavailable, unavailable } from './errors.js';
import { bootstrap } from './bootstrap.js';
import { q, versionId, type HeadDoc, type VersionDoc, type WriteResult } from './queries.js';
import { SCHEMA } from './schema.js';

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

  /** Connects and creates the database, tables and indexes if they are missing (safe to race; see bootstrap.ts). */
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
    await bootstrap(this.connection, { db: this.db, schema: SCHEMA, replicas: this.options.replicas }, this.log);
  }

  async write(key: ConfigKey, plan: (current: ConfigVersion | undefined) => WritePlan): Promise<WritePlan> {
    // Writes to one config from this process take turns, so that they do not race each other for
    // the same version; the insert still settles races with other processes.
    const id = keyId(key);
    const pending = new PendingWrite();
    const previous = this.writeQueues.get(id) ?? Promise.resolve();
    const run = previous.then(() => this.writeOnce(key, plan, pending));
    const settled = run.then(
      () => {},
      () => {},
    );
    this.writeQueues.set(id, settled);
    void settled.then(() => {
      if (this.writeQueues.get(id) === settled) this.writeQueues.delete(id);
    });
    return this.answer(run, pending);
  }

  /**
   * The caller's answer: the write's result, or at the deadline (queue wait
   * included, so that during an outage a caller learns within it however many
   * writes are queued before its own) what is known at that moment: committed,
   * not written (and never to be: `pending.answered` stops it from sending
   * anything), or in doubt (an insert was sent and its outcome is unknown).
   */
  private answer(run: Promise<WritePlan>, pending: PendingWrite): Promise<WritePlan> {
    return new Promise<WritePlan>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.answered = true;
        if (pending.committed !== undefined) resolve(pending.committed);
        else if (pending.inDoubt !== undefined) {
          pending.toldUnknown = true;
          reject(outcomeUnknown(pending.inDoubt, this.options.timeoutMs));
        } else reject(unavailable('failed', `the write did not complete within ${this.options.timeoutMs} ms; nothing was written`));
      }, this.options.timeoutMs);
      run.then(
        (result) => {
          clearTimeout(timer);
          if (!pending.answered) {
            pending.answered = true;
            resolve(result);
          } else if (pending.toldUnknown && result.kind === 'create') {
            // For operators matching a client's report: its insert in doubt did land.
            this.log.info({ version: result.next.version }, 'a write answered WRITE_OUTCOME_UNKNOWN was stored');
          }
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (pending.answered) return;
          pending.answered = true;
          // A failure while an insert is in doubt is not a clean failure: the insert may still land.
          reject(pending.inDoubt !== undefined && error !== ABANDONED ? outcomeUnknown(pending.inDoubt, undefined, error) : error);
        },
      );
    });
  }

  private async writeOnce(
    key: ConfigKey,
    plan: (current: ConfigVersion | undefined) => WritePlan,
    pending: PendingWrite,
  ): Promise<WritePlan> {
    const configId = configUuid(key);
    // One id for every attempt of this write: whichever attempt lands is recognised as this write.
    const writeId = randomUUID();
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      if (pending.answered) throw ABANDONED;
      await this.options.faults?.('before-read');
      const decision = plan(await this.readLatest(key));
      if (decision.kind === 'unchanged') return decision;
      const doc = toDoc(configId, decision.next, writeId);
      await this.options.faults?.('before-insert');
      if ((await this.commit(doc, pending)) === 'theirs') {
        // Another writer took this version: back off a little, re-read and plan again.
        await sleep(Math.random() * Math.min(attempt, 10));
        continue;
      }
      pending.committed = decision;
      pending.inDoubt = undefined;
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

  /**
   * Inserts a version: 'ours' once this write holds the version's key, 'theirs'
   * once another write does (then no attempt of this write can land there).
   * An insert whose effect is unknown (a replica or the connection was lost,
   * the timeout passed after sending) is settled by inserting the same
   * document again: it lands, or the key turns out taken, by this write's
   * earlier attempt or by another write. This goes on until the outcome is
   * known or the caller has been answered. A definite failure throws, with
   * nothing written.
   */
  private async commit(doc: VersionDoc, pending: PendingWrite): Promise<'ours' | 'theirs'> {
    const send = (): void => {
      // Nothing is sent for a caller who has been answered: a write reported as failed never runs later.
      if (pending.answered) throw ABANDONED;
      pending.inDoubt = doc.version;
    };
    let indeterminate = false;
    for (let backoff = 25; ; backoff = Math.min(backoff * 2, 500)) {
      let result: WriteResult;
      try {
        result = await this.connection.run<WriteResult>(q.insertVersion(this.db, doc), 'insert a version', send);
      } catch (error: unknown) {
        if (error === ABANDONED) throw error;
        if (!(error instanceof DatabaseUnavailableError) || (error.outcome === 'failed' && !indeterminate)) {
          // Not performed, and no earlier attempt can land: a clean failure.
          if (!indeterminate) pending.inDoubt = undefined;
          throw error;
        }
        indeterminate ||= error.outcome === 'indeterminate';
        this.log.info({ err: error, version: doc.version }, 'insert of a version in doubt; settling it');
        await sleep(backoff);
        continue;
      }
      if (result.inserted === 1) return 'ours';
      if (!(result.errors && /Duplicate primary key/i.test(result.first_error ?? ''))) {
        if (!indeterminate) pending.inDoubt = undefined;
        throw new Error(`inserting a version failed: ${result.first_error ?? JSON.stringify(result)}`);
      }
      const holder = await this.holderOf(doc, pending);
      if (holder === doc.write_id) return 'ours';
      pending.inDoubt = undefined;
      return 'theirs';
    }
  }

  /** The write id of the version stored under `doc`'s key, read back until the read succeeds. */
  private async holderOf(doc: VersionDoc, pending: PendingWrite): Promise<string> {
    for (let backoff = 25; ; backoff = Math.min(backoff * 2, 500)) {
      if (pending.answered) throw ABANDONED;
      try {
        const stored = await this.connection.run<VersionDoc | null>(q.version(this.db, doc.id), 'check who holds a version');
        if (stored === null) throw new Error(`version ${doc.id} was reported taken but is missing`);
        return stored.write_id;
      } catch (error: unknown) {
        if (!isUnavailable(error)) throw error;
        await sleep(backoff);
      }
    }
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

function toDoc(configId: string, version: ConfigVersion, writeId: string): VersionDoc {
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
    write_id: writeId,
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
    timer = setTimeout(() => reject(unavailable('failed', what)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** One write's state, shared by the write and the timer that answers its caller at the deadline. */
class PendingWrite {
  /** The caller has been answered: the write must not send anything more. */
  answered = false;
  /** The version an insert of this write was sent for, while its outcome is unknown. */
  inDoubt: number | undefined;
  /** Set once the write's version is stored. */
  committed: WritePlan | undefined;
  /** The caller was answered WRITE_OUTCOME_UNKNOWN. */
  toldUnknown = false;
}

/** Thrown inside a write whose caller has been answered; nobody receives it. */
const ABANDONED = new CfgdError('unavailable', 'WRITE_ABANDONED', 'the write was abandoned after its caller was answered');

function outcomeUnknown(version: number, timeoutMs?: number, cause?: unknown): CfgdError {
  const why = timeoutMs === undefined ? 'the database did not confirm the write' : `the database did not confirm the write within ${timeoutMs} ms`;
  return new CfgdError(
    'unavailable',
    'WRITE_OUTCOME_UNKNOWN',
    `${why}: it may or may not have been stored, as version ${version} if at all; read the config back before retrying`,
    { metadata: { version: String(version) }, cause },
  );
}
