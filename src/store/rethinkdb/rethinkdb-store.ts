import type { Logger } from 'pino';
import {
  configUuid,
  type AuditEntry,
  type ConfigKey,
  type ConfigSchema,
  type ConfigVersion,
  type Planner,
  type RequestIdentity,
  type WriteOutcome,
} from '../../domain/index.js';
import type { CredentialStore } from '../credential-store.js';
import type { InstanceStore } from '../instance-store.js';
import {
  FIRST_VERSION,
  UNHEARD,
  type StoreEvents,
  type ConfigStore,
  type Retention,
  type StoreStats,
  type SubscriptionScope,
  type Unsubscribe,
  type Wake,
} from '../store.js';
import { Subscribers } from '../subscribers.js';
import { bootstrap } from './bootstrap.js';
import { ChangeFeed } from './change-feed.js';
import { Committer, type WriteFaults } from './commit.js';
import { RethinkConnection, type RethinkDbOptions } from './connection.js';
import { CredentialFeed } from './credential-feed.js';
import { RethinkDbCredentials } from './credentials.js';
import { RethinkDbInstances } from './instances.js';
import { Readers } from './readers.js';
import {
  q,
  requestDocId,
  schemaArchiveId,
  type ChangesResult,
  type HeadDoc,
  type PrunedDoc,
  type RequestDoc,
  type SchemaArchiveDoc,
  type WriteResult,
} from './queries.js';
import { SCHEMA } from './schema.js';

/** Versions removed per step while pruning. */
const PRUNE_STEP = 500;

export type { WriteStep } from './commit.js';

export interface RethinkDbStoreOptions extends RethinkDbOptions {
  /** Test hook: called at each step of a write; a throw there simulates a crash at that point. */
  readonly faults?: WriteFaults | undefined;
  /** Told of commits, of the connection opening and breaking, and of changefeeds reopened. */
  readonly events?: StoreEvents | undefined;
}

/**
 * The cluster backend: any number of cfgd processes share one RethinkDB
 * database. It composes the parts, which share one connection:
 *
 * - `commit.ts`, the write path: an insert-only versions table whose primary
 *   key holds the version is the commit point and the compare-and-set, and
 *   the head document is a projection rolled forward after it;
 * - `readers.ts`, the reads: by primary key, from the first kept version,
 *   looking past a head that lags a commit;
 * - `change-feed.ts`, watch: one changefeed per process, used only as a
 *   wake-up; what a watcher delivers is always read back by the readers;
 * - `credentials.ts`, tokens and bindings, with `credential-feed.ts`, their
 *   own wake-up feed (opened only when something subscribes to them);
 * - `instances.ts`, instances' reports on configs, one document per config
 *   and instance;
 * - `bootstrap.ts`, the race-safe creation of the database, tables and indexes.
 */
export class RethinkDbStore implements ConfigStore {
  private readonly connection: RethinkConnection;
  private readonly db: string;
  private readonly subscribers = new Subscribers();
  private readonly readers: Readers;
  private readonly committer: Committer;
  private readonly feed: ChangeFeed;
  private readonly credentialFeed: CredentialFeed;
  private readonly events: StoreEvents;
  readonly credentials: CredentialStore;
  readonly instances: InstanceStore;

  private constructor(options: RethinkDbStoreOptions, log: Logger) {
    const { db, timeoutMs } = options;
    this.events = options.events ?? UNHEARD;
    const connection = new RethinkConnection(options, log, this.events);
    this.connection = connection;
    this.db = db;
    this.readers = new Readers(connection, db);
    this.committer = new Committer({ connection, db, timeoutMs, reader: this.readers, log, faults: options.faults });
    this.feed = new ChangeFeed({ connection, db, timeoutMs, subscribers: this.subscribers, log, events: this.events });
    this.credentialFeed = new CredentialFeed({ connection, db, timeoutMs, log });
    this.credentials = new RethinkDbCredentials({ connection, db, feed: this.credentialFeed });
    this.instances = new RethinkDbInstances({ connection, db });
  }

  /** Connects and creates the database, tables and indexes if they are missing (safe to race; see bootstrap.ts). */
  static async open(options: RethinkDbStoreOptions, log: Logger): Promise<RethinkDbStore> {
    const store = new RethinkDbStore(options, log);
    try {
      await bootstrap(store.connection, { db: options.db, schema: SCHEMA, replicas: options.replicas }, log);
    } catch (error: unknown) {
      await store.close();
      throw error;
    }
    return store;
  }

  async write(key: ConfigKey, plan: Planner, request?: RequestIdentity): Promise<WriteOutcome> {
    const began = performance.now();
    const outcome = await this.committer.write(key, plan, request);
    // Each write that makes a version is a commit of its own on this backend.
    if (outcome.kind === 'create') this.events.committed(1, (performance.now() - began) / 1000);
    return outcome;
  }

  async latest(key: ConfigKey): Promise<ConfigVersion | undefined> {
    return this.readers.latest(key);
  }

  async version(key: ConfigKey, version: number): Promise<ConfigVersion | undefined> {
    return this.readers.version(key, version);
  }

  async versionsAfter(key: ConfigKey, after: number, limit: number): Promise<ConfigVersion[]> {
    return this.readers.versionsAfter(key, after, limit);
  }

  async auditEntries(key: ConfigKey, from: number, limit: number): Promise<AuditEntry[]> {
    return this.readers.auditEntries(key, from, limit);
  }

  async firstKeptVersion(key: ConfigKey): Promise<number> {
    return this.readers.firstKept(configUuid(key));
  }

  async listLatest(userId: string): Promise<ConfigVersion[]> {
    return this.readers.listLatest(userId);
  }

  async retention(key: ConfigKey): Promise<Retention | undefined> {
    const head = await this.readers.head(configUuid(key));
    return head && { firstKept: head.first_kept ?? FIRST_VERSION, maxVersions: head.max_versions ?? undefined };
  }

  async ping(): Promise<void> {
    // A head no config has (config ids are UUIDs): a primary-key read of the table every read starts from.
    await this.connection.run(q.head(this.db, 'cfgd-health-probe'), 'probe the database');
  }

  async setMaxVersions(key: ConfigKey, maxVersions: number | undefined): Promise<boolean> {
    const result = await this.connection.run<WriteResult>(
      q.setMaxVersions(this.db, configUuid(key), maxVersions ?? null),
      'set the limit on kept versions',
    );
    return result.skipped !== 1;
  }

  /**
   * Raises the floor on the head first (readers stop looking below it), then
   * removes the versions below it in steps, oldest first: each step copies
   * what must outlive a version (the schema it set, the request id it
   * carried) before the version is deleted. A step that fails leaves
   * versions below the floor, which readers ignore and the next prune removes.
   */
  async prune(key: ConfigKey, floor: number): Promise<number> {
    const configId = configUuid(key);
    const raised = await this.connection.run<ChangesResult<HeadDoc>>(
      q.raiseFloor(this.db, configId, floor),
      'raise the first kept version',
    );
    const head = raised.changes?.[0]?.new_val;
    const first = head?.first_kept ?? FIRST_VERSION;
    for (;;) {
      const docs = await this.connection.run<PrunedDoc[]>(
        q.prunable(this.db, configId, first, PRUNE_STEP),
        'read versions to prune',
      );
      if (docs.length === 0) return first;
      const schemas: SchemaArchiveDoc[] = docs
        .filter((doc) => doc.schema_json !== undefined && doc.schema_version !== undefined)
        .map((doc) => ({
          id: schemaArchiveId(configId, doc.schema_version!),
          config_id: configId,
          schema_version: doc.schema_version!,
          version: doc.version,
          schema_json: doc.schema_json!,
          author: doc.author,
          created_at: doc.created_at,
        }));
      const requests: RequestDoc[] = docs
        .filter((doc) => doc.request_key !== undefined)
        .map((doc) => ({
          id: requestDocId(configId, doc.request_key![1]),
          config_id: configId,
          request_id: doc.request_key![1],
          fingerprint: doc.request_fp ?? '',
          version: doc.version,
          changed: true,
          created_at: doc.created_at,
        }));
      if (schemas.length > 0)
        await this.connection.run<WriteResult>(q.archiveSchemas(this.db, schemas), 'archive schemas');
      if (requests.length > 0) {
        await this.connection.run<WriteResult>(q.archiveRequests(this.db, requests), 'archive request ids');
      }
      await this.connection.run<WriteResult>(
        q.deleteVersions(
          this.db,
          docs.map((doc) => doc.id),
        ),
        'prune versions',
      );
      if (docs.length < PRUNE_STEP) return first;
    }
  }

  async schema(key: ConfigKey, schemaVersion: number): Promise<ConfigSchema | undefined> {
    return this.readers.schema(key, schemaVersion);
  }

  async schemas(key: ConfigKey, from: number, limit: number): Promise<ConfigSchema[]> {
    return this.readers.schemas(key, from, limit);
  }

  async subscribe(scope: SubscriptionScope, wake: Wake): Promise<Unsubscribe> {
    const unsubscribe = this.subscribers.add(scope, wake);
    try {
      await this.feed.ready();
    } catch (error: unknown) {
      unsubscribe();
      throw error;
    }
    return unsubscribe;
  }

  /**
   * The credential feed is not counted: `changefeeds` are those opened for
   * `subscribe` (one per node, which operators and tests rely on).
   */
  stats(): StoreStats {
    return { subscriptions: this.subscribers.size, changefeeds: this.feed.open ? 1 : 0 };
  }

  async close(): Promise<void> {
    this.feed.stop();
    this.credentialFeed.stop();
    this.subscribers.clear();
    // Closing the connection ends the feeds' pending reads, and with them the feeds' loops.
    await this.connection.close();
    await Promise.all([this.feed.ended(), this.credentialFeed.ended()]);
  }
}
