import type { ConfigKey, Planner, RequestIdentity, WriteOutcome } from '../../domain/index.js';
import type { CredentialStore } from '../credential-store.js';
import type { InstanceStore } from '../instance-store.js';
import {
  UNHEARD,
  type ConfigStore,
  type StoreEvents,
  type StoreStats,
  type SubscriptionScope,
  type Unsubscribe,
  type Wake,
} from '../store.js';
import { Subscribers } from '../subscribers.js';
import { EmbeddedCredentials } from './credentials.js';
import { EmbeddedInstances } from './instances.js';
import {
  openDatabase,
  PRUNE_STEP,
  SCHEMA_COLUMNS,
  VERSION_COLUMNS,
  type Database,
  type EmbeddedStoreOptions,
} from './database.js';
import { prepareWrite, type PreparedResult, type PreparedWrite } from './prepared-write.js';
import { EmbeddedReader, EmbeddedReads } from './reader.js';

export type { EmbeddedStoreOptions } from './database.js';

/** Most writes one group commit takes; the rest wait for the next, so one transaction stays short. */
const MAX_GROUP = 1024;

interface Job {
  run(): unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** What the writer's group commits have done, for operators and tests. */
export interface CommitStats {
  /** Transactions committed by group commit. */
  readonly commits: number;
  /** Writes they carried (created versions, unchanged writes with request ids, refused and conflicting ones). */
  readonly writes: number;
}

/**
 * The default backend: SQLite (better-sqlite3) in WAL mode. A write is one
 * version row (values and audit entry) and the head pointer, stored together
 * or not at all. This store is the one writer of its database file.
 *
 * Writes use group commit: those that arrive while the event loop is busy
 * (with the previous commit's fsync, say) are stored in one transaction, each
 * in a savepoint of its own (a write that fails rolls back alone), and the
 * transaction commits with one fsync. Each write resolves only after that
 * commit, so an acknowledged write is durable as `sync` promises, and a write
 * whose commit never happened was never acknowledged. Plans run inside the
 * transaction, after the writes before them in the group, so writes to one
 * config serialize without retries.
 *
 * Worker processes (see `WorkerStore`) plan on their own connection and hand
 * the result here as a `PreparedWrite`, which joins the same group commit.
 */
export class EmbeddedStore extends EmbeddedReads implements ConfigStore {
  private readonly db: Database;
  protected readonly reader: EmbeddedReader;
  private readonly subscribers = new Subscribers();
  private readonly commitListeners = new Set<(keys: readonly ConfigKey[]) => void>();
  private readonly stmts;
  private readonly tokensAndBindings: EmbeddedCredentials;
  /** Instances' reports: one statement each, on the writer's connection. */
  readonly instances: InstanceStore;
  private readonly syncFull: boolean;
  private readonly queue: Job[] = [];
  /** Configs with a version created in the group being committed. */
  private committed: ConfigKey[] = [];
  private readonly inSavepoint: (run: () => unknown) => unknown;
  private counters = { commits: 0, writes: 0 };
  private readonly events: StoreEvents;

  constructor(options: EmbeddedStoreOptions) {
    super();
    this.events = options.events ?? UNHEARD;
    this.db = openDatabase(options);
    this.syncFull = options.sync === 'full';
    this.reader = new EmbeddedReader(this.db);
    this.tokensAndBindings = new EmbeddedCredentials(this.db);
    this.instances = new EmbeddedInstances(this.db);
    // A transaction function called inside a transaction runs in a savepoint.
    this.inSavepoint = this.db.transaction((run: () => unknown) => run());
    this.stmts = {
      setMaxVersions: this.db.prepare('UPDATE config_heads SET max_versions = ? WHERE user_id = ? AND config_name = ?'),
      raiseFloor: this.db.prepare(
        `UPDATE config_heads SET first_kept = MAX(first_kept, MIN(?, version)) WHERE user_id = ? AND config_name = ?`,
      ),
      pruneStep: this.db.prepare(
        `DELETE FROM config_versions WHERE user_id = ? AND config_name = ? AND version IN (
           SELECT version FROM config_versions WHERE user_id = ? AND config_name = ? AND version < ?
           ORDER BY version LIMIT ${PRUNE_STEP})`,
      ),
      insertVersion: this.db.prepare(
        `INSERT INTO config_versions (user_id, config_name, ${VERSION_COLUMNS})
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertRequest: this.db.prepare(
        `INSERT INTO config_requests (user_id, config_name, request_id, fingerprint, version, changed, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertSchema: this.db.prepare(
        `INSERT INTO config_schemas (user_id, config_name, ${SCHEMA_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      upsertHead: this.db.prepare(
        `INSERT INTO config_heads (user_id, config_name, version) VALUES (?, ?, ?)
         ON CONFLICT (user_id, config_name) DO UPDATE SET version = excluded.version`,
      ),
    };
  }

  write(key: ConfigKey, plan: Planner, request?: RequestIdentity): Promise<WriteOutcome> {
    return this.enqueue((): WriteOutcome => {
      if (request !== undefined) {
        const record = this.reader.request(key, request.requestId);
        if (record !== undefined) return { kind: 'replay', record };
      }
      const current = this.reader.latest(key);
      const decision = plan(current, this.reader.schema(key, current?.audit.schemaVersion ?? 0));
      this.store(prepareWrite(key, current, decision, request));
      // The next write (and Get) starts from the version just made, without reading it back.
      if (decision.kind === 'create') this.reader.rememberLatest(decision.next);
      return decision;
    });
  }

  /**
   * Stores a write planned elsewhere, in the next group commit, if the
   * config's head is still the version it was planned against (`conflict`
   * otherwise) and its request id is unseen (`replay` otherwise).
   */
  commitPrepared(prepared: PreparedWrite): Promise<PreparedResult> {
    return this.enqueue((): PreparedResult => {
      const { key, request } = prepared;
      if (request !== undefined) {
        const record = this.reader.request(key, request.requestId);
        if (record !== undefined) return { kind: 'replay', record };
      }
      if ((this.reader.head(key)?.version ?? 0) !== prepared.expected) return { kind: 'conflict' };
      this.store(prepared);
      return { kind: 'applied' };
    });
  }

  /**
   * Calls `listener` after each group commit that created versions, with the
   * config of each (once per version, in commit order), before any write of
   * the group is acknowledged to its caller.
   */
  onCommit(listener: (keys: readonly ConfigKey[]) => void): Unsubscribe {
    const entry = (keys: readonly ConfigKey[]): void => listener(keys);
    this.commitListeners.add(entry);
    return () => {
      this.commitListeners.delete(entry);
    };
  }

  commitStats(): CommitStats {
    return { ...this.counters };
  }

  async setMaxVersions(key: ConfigKey, maxVersions: number | undefined): Promise<boolean> {
    return this.stmts.setMaxVersions.run(maxVersions ?? null, key.userId, key.configName).changes === 1;
  }

  async prune(key: ConfigKey, floor: number): Promise<number> {
    // The floor first, so that readers stop looking below it before anything is removed.
    this.unsynced(() => this.stmts.raiseFloor.run(floor, key.userId, key.configName));
    const first = this.reader.firstKept(key);
    for (;;) {
      const removed = this.unsynced(
        () => this.stmts.pruneStep.run(key.userId, key.configName, key.userId, key.configName, first).changes,
      );
      if (removed < PRUNE_STEP) return first;
      // Let writes in between the steps.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async subscribe(scope: SubscriptionScope, wake: Wake): Promise<Unsubscribe> {
    // Commits wake listeners synchronously after they commit, so a listener is live at once.
    return this.subscribers.add(scope, wake);
  }

  get credentials(): CredentialStore {
    return this.tokensAndBindings;
  }

  stats(): StoreStats {
    return { subscriptions: this.subscribers.size, changefeeds: 0 };
  }

  async close(): Promise<void> {
    // Writes already queued still commit (their callers are waiting); nothing new is taken after this.
    if (this.queue.length > 0) this.flush();
    this.subscribers.clear();
    this.commitListeners.clear();
    this.tokensAndBindings.close();
    if (this.db.open) this.db.close();
  }

  /**
   * Runs `run` inside the next group commit and resolves with its result once
   * that commit is durable; rejects with what it threw (its savepoint rolled
   * back, the rest of the group unaffected) or with the commit's failure.
   */
  private enqueue<T>(run: () => T): Promise<T> {
    if (!this.db.open) return Promise.reject(new Error('the embedded store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run, resolve: resolve, reject });
      // The group is what arrives until the event loop comes round: writes
      // from the same burst of requests, or received during the last fsync.
      if (this.queue.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const jobs = this.queue.splice(0, MAX_GROUP);
    if (this.queue.length > 0) setImmediate(() => this.flush());
    if (jobs.length === 0) return;
    const began = performance.now();
    const results: { ok: boolean; value: unknown }[] = [];
    this.committed = [];
    try {
      this.db
        .transaction(() => {
          for (const job of jobs) {
            try {
              results.push({ ok: true, value: this.inSavepoint(() => job.run()) });
            } catch (error: unknown) {
              results.push({ ok: false, value: error });
            }
          }
        })
        .immediate();
    } catch (error: unknown) {
      // The commit itself failed: nothing of the group is stored, and no write of it is acknowledged.
      this.committed = [];
      this.reader.forgetAll();
      for (const job of jobs) job.reject(error);
      return;
    }
    this.counters = { commits: this.counters.commits + 1, writes: this.counters.writes + jobs.length };
    this.events.committed(jobs.length, (performance.now() - began) / 1000);
    const committed = this.committed;
    this.committed = [];
    for (const key of committed) this.subscribers.wake(key.userId, key.configName);
    if (committed.length > 0) for (const listener of [...this.commitListeners]) listener(committed);
    jobs.forEach((job, index) => {
      const result = results[index]!;
      if (result.ok) job.resolve(result.value);
      else job.reject(result.value);
    });
  }

  /** Stores a prepared write's rows; inside a savepoint of the group commit. */
  private store(prepared: PreparedWrite): void {
    const { key, version, schema, request } = prepared;
    if (version !== undefined) {
      this.reader.forgetLatest(key);
      this.stmts.insertVersion.run(key.userId, key.configName, ...version);
      if (schema !== undefined) this.stmts.insertSchema.run(key.userId, key.configName, ...schema);
      this.stmts.upsertHead.run(key.userId, key.configName, version[0]);
    }
    if (request !== undefined) {
      this.stmts.insertRequest.run(
        key.userId,
        key.configName,
        request.requestId,
        request.fingerprint,
        request.version,
        request.changed ? 1 : 0,
        Date.now(),
      );
    }
    // Last, so that a savepoint that rolls back never leaves a wake-up behind.
    if (version !== undefined) this.committed.push(key);
  }

  /**
   * Runs a statement without its own fsync. Pruning need not be durable: lost
   * to a power cut, its floor and its deletions go together (one transaction
   * each), and the next prune does them again; the next synced commit makes
   * it durable anyway. Nothing else runs in between: better-sqlite3 is
   * synchronous.
   */
  private unsynced<T>(run: () => T): T {
    if (!this.syncFull) return run();
    this.db.pragma('synchronous = NORMAL');
    try {
      return run();
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }
}
