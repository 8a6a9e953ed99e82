import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type {
  AuditEntry,
  ConfigKey,
  ConfigSchema,
  ConfigVersion,
  Planner,
  RequestIdentity,
  WriteOutcome,
} from '../domain/index.js';
import type { CredentialStore } from '../store/credential-store.js';
import type { InstanceStore } from '../store/instance-store.js';
import type {
  ConfigStore,
  Retention,
  StoreEvents,
  StoreStats,
  SubscriptionScope,
  Unsubscribe,
  Wake,
} from '../store/store.js';
import { CellCounter, CellHistogram, LATENCY_BUCKETS, type CounterChild, type HistogramChild } from './cells.js';

/** Writes per commit: 1 without group commit, up to the writer's group limit (1024) with it. */
const WRITES_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** The store's own events as metrics: commits, writes per commit, the database connection, changefeed restarts. */
export function storeEvents(registry: Registry): StoreEvents {
  const commits = new Counter({
    name: 'cfgd_store_commits_total',
    help: 'Transactions the store committed (with group commit, one holds several writes).',
    registers: [registry],
  });
  const writes = new Histogram({
    name: 'cfgd_store_commit_writes',
    help: 'Writes per commit.',
    buckets: WRITES_BUCKETS,
    registers: [registry],
  });
  const commitSeconds = new Histogram({
    name: 'cfgd_store_commit_seconds',
    help: 'Time a commit took, its fsync included.',
    buckets: [...LATENCY_BUCKETS],
    registers: [registry],
  });
  const connected = new Gauge({
    name: 'cfgd_store_connected',
    help: 'RethinkDB: 1 while this process has a connection to the database, else 0; over workers, the least.',
    registers: [registry],
    aggregator: 'min',
  });
  const restarts = new Counter({
    name: 'cfgd_store_changefeed_restarts_total',
    help: 'RethinkDB: changefeeds opened again after they broke.',
    registers: [registry],
  });
  return {
    committed(count, seconds) {
      commits.inc();
      writes.observe(count);
      commitSeconds.observe(seconds);
    },
    connection(up) {
      connected.set(up ? 1 : 0);
    },
    feedRestarted() {
      restarts.inc();
    },
  };
}

type Operation = Exclude<keyof ConfigStore, 'credentials' | 'instances' | 'stats' | 'close'>;

const OPERATIONS: readonly Operation[] = [
  'write',
  'latest',
  'version',
  'versionsAfter',
  'auditEntries',
  'firstKeptVersion',
  'retention',
  'setMaxVersions',
  'prune',
  'schema',
  'schemas',
  'listLatest',
  'subscribe',
  'ping',
];

/**
 * A `ConfigStore` that times every operation of `store` into
 * `cfgd_store_operation_seconds{operation}` and counts those that fail. The
 * composition root hands it to the app; the backend knows nothing of it.
 */
export class InstrumentedStore implements ConfigStore {
  private readonly timers: Record<Operation, HistogramChild>;
  private readonly failures: Record<Operation, CounterChild>;

  constructor(
    private readonly store: ConfigStore,
    registry: Registry,
  ) {
    const seconds = new CellHistogram(
      'cfgd_store_operation_seconds',
      'Time a store operation took, by operation.',
      registry,
      LATENCY_BUCKETS,
    );
    const failed = new CellCounter('cfgd_store_operation_failures_total', 'Store operations that failed.', registry);
    this.timers = Object.fromEntries(OPERATIONS.map((op) => [op, seconds.child({ operation: op })])) as Record<
      Operation,
      HistogramChild
    >;
    this.failures = Object.fromEntries(OPERATIONS.map((op) => [op, failed.child({ operation: op })])) as Record<
      Operation,
      CounterChild
    >;
  }

  get credentials(): CredentialStore {
    return this.store.credentials;
  }

  get instances(): InstanceStore {
    return this.store.instances;
  }

  private timed<T>(operation: Operation, run: () => Promise<T>): Promise<T> {
    const began = performance.now();
    return run().then(
      (value) => {
        this.timers[operation].observe((performance.now() - began) / 1000);
        return value;
      },
      (error: unknown) => {
        this.timers[operation].observe((performance.now() - began) / 1000);
        this.failures[operation].value += 1;
        throw error;
      },
    );
  }

  write(key: ConfigKey, plan: Planner, request?: RequestIdentity): Promise<WriteOutcome> {
    return this.timed('write', () => this.store.write(key, plan, request));
  }

  latest(key: ConfigKey): Promise<ConfigVersion | undefined> {
    return this.timed('latest', () => this.store.latest(key));
  }

  version(key: ConfigKey, version: number): Promise<ConfigVersion | undefined> {
    return this.timed('version', () => this.store.version(key, version));
  }

  versionsAfter(key: ConfigKey, after: number, limit: number): Promise<ConfigVersion[]> {
    return this.timed('versionsAfter', () => this.store.versionsAfter(key, after, limit));
  }

  auditEntries(key: ConfigKey, from: number, limit: number): Promise<AuditEntry[]> {
    return this.timed('auditEntries', () => this.store.auditEntries(key, from, limit));
  }

  firstKeptVersion(key: ConfigKey): Promise<number> {
    return this.timed('firstKeptVersion', () => this.store.firstKeptVersion(key));
  }

  retention(key: ConfigKey): Promise<Retention | undefined> {
    return this.timed('retention', () => this.store.retention(key));
  }

  setMaxVersions(key: ConfigKey, maxVersions: number | undefined): Promise<boolean> {
    return this.timed('setMaxVersions', () => this.store.setMaxVersions(key, maxVersions));
  }

  prune(key: ConfigKey, floor: number): Promise<number> {
    return this.timed('prune', () => this.store.prune(key, floor));
  }

  schema(key: ConfigKey, schemaVersion: number): Promise<ConfigSchema | undefined> {
    return this.timed('schema', () => this.store.schema(key, schemaVersion));
  }

  schemas(key: ConfigKey, from: number, limit: number): Promise<ConfigSchema[]> {
    return this.timed('schemas', () => this.store.schemas(key, from, limit));
  }

  listLatest(userId: string): Promise<ConfigVersion[]> {
    return this.timed('listLatest', () => this.store.listLatest(userId));
  }

  subscribe(scope: SubscriptionScope, wake: Wake): Promise<Unsubscribe> {
    return this.timed('subscribe', () => this.store.subscribe(scope, wake));
  }

  ping(): Promise<void> {
    return this.timed('ping', () => this.store.ping());
  }

  stats(): StoreStats {
    return this.store.stats();
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
