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
import type { ConfigStore, StoreStats, SubscriptionScope, Unsubscribe, Wake } from '../store.js';
import { Subscribers } from '../subscribers.js';
import { bootstrap } from './bootstrap.js';
import { ChangeFeed } from './change-feed.js';
import { Committer, type WriteFaults } from './commit.js';
import { RethinkConnection, type RethinkDbOptions } from './connection.js';
import { CredentialFeed } from './credential-feed.js';
import { RethinkDbCredentials } from './credentials.js';
import { Readers } from './readers.js';
import { SCHEMA } from './schema.js';

export type { WriteStep } from './commit.js';

export interface RethinkDbStoreOptions extends RethinkDbOptions {
  /** Test hook: called at each step of a write; a throw there simulates a crash at that point. */
  readonly faults?: WriteFaults | undefined;
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
 * - `bootstrap.ts`, the race-safe creation of the database, tables and indexes.
 */
export class RethinkDbStore implements ConfigStore {
  private readonly connection: RethinkConnection;
  private readonly subscribers = new Subscribers();
  private readonly readers: Readers;
  private readonly committer: Committer;
  private readonly feed: ChangeFeed;
  private readonly credentialFeed: CredentialFeed;
  readonly credentials: CredentialStore;

  private constructor(options: RethinkDbStoreOptions, log: Logger) {
    const { db, timeoutMs } = options;
    const connection = new RethinkConnection(options, log);
    this.connection = connection;
    this.readers = new Readers(connection, db);
    this.committer = new Committer({ connection, db, timeoutMs, reader: this.readers, log, faults: options.faults });
    this.feed = new ChangeFeed({ connection, db, timeoutMs, subscribers: this.subscribers, log });
    this.credentialFeed = new CredentialFeed({ connection, db, timeoutMs, log });
    this.credentials = new RethinkDbCredentials({ connection, db, feed: this.credentialFeed });
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
    return this.committer.write(key, plan, request);
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
