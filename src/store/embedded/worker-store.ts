import {
  CfgdError,
  type BindingRecord,
  type ConfigKey,
  type Planner,
  type RequestIdentity,
  type TokenRecord,
  type WriteOutcome,
} from '../../domain/index.js';
import type { CredentialStore } from '../credential-store.js';
import type { InstanceStore } from '../instance-store.js';
import type { ConfigStore, StoreStats, SubscriptionScope, Unsubscribe, Wake } from '../store.js';
import { keyId, Subscribers } from '../subscribers.js';
import { EmbeddedCredentials } from './credentials.js';
import { EmbeddedInstances } from './instances.js';
import { openDatabase, type Database, type EmbeddedStoreOptions } from './database.js';
import { prepareWrite, type PreparedResult } from './prepared-write.js';
import { EmbeddedReader, EmbeddedReads } from './reader.js';
import {
  batching,
  fromLinkedError,
  received,
  type CredentialWrite,
  type WriterCall,
  type WriterLink,
  type WriterMessage,
} from './writer-link.js';

/** Lost races in a row after which a write gives up (as on RethinkDB). */
const MAX_ATTEMPTS = 1000;

interface Pending {
  readonly call: WriterCall;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * The embedded store as a worker process of `--workers N` sees it: reads on
 * its own connection to the database file (WAL: concurrent with the writer,
 * each read seeing every commit before it), writes through the one writer
 * process (see `EmbeddedStore` and `serveWorker`) over a `WriterLink`.
 *
 * A write reads the config's head and schema here, plans here (the CPU of
 * planning, hashing and encoding spreads over the workers), and hands the
 * encoded rows to the writer, which stores them in its next group commit if
 * the head has not moved meanwhile; when it has, the write reads and plans
 * again, as on a shared backend. Writes to one config from this process go
 * one at a time, so they do not race each other. After each group commit the
 * writer tells every worker which configs changed; that wakes the
 * subscriptions here.
 */
export class WorkerStore extends EmbeddedReads implements ConfigStore {
  private readonly db: Database;
  protected readonly reader: EmbeddedReader;
  private readonly subscribers = new Subscribers();
  private readonly pending = new Map<number, Pending>();
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly credentialStore: WorkerCredentials;
  /** Reports: read here, written by the writer. */
  readonly instances: InstanceStore;
  private readonly detach: Unsubscribe[];
  private nextId = 1;
  private closed = false;

  private readonly link: WriterLink;

  constructor(options: EmbeddedStoreOptions, link: WriterLink) {
    super();
    // The calls of one event-loop turn travel together (the first at once).
    this.link = batching(link, setImmediate, { leading: true });
    this.db = openDatabase(options, 'reader');
    this.reader = new EmbeddedReader(this.db);
    this.credentialStore = new WorkerCredentials(new EmbeddedCredentials(this.db), (method, args) =>
      this.call({ op: 'credentials', method, args }),
    );
    const local = new EmbeddedInstances(this.db);
    this.instances = {
      putReport: async (key, report) => void (await this.call({ op: 'putReport', key, report })),
      reports: (key, since, limit) => local.reports(key, since, limit),
      expireReports: async (before) => (await this.call({ op: 'expireReports', before })) as number,
    };
    this.detach = [link.onMessage((message) => this.receive(message)), link.onClose(() => this.linkLost())];
  }

  write(key: ConfigKey, plan: Planner, request?: RequestIdentity): Promise<WriteOutcome> {
    const id = keyId(key);
    const previous = this.tails.get(id) ?? Promise.resolve();
    const run = previous.then(
      () => this.writeNow(key, plan, request),
      () => this.writeNow(key, plan, request),
    );
    this.tails.set(id, run);
    const clear = (): void => {
      if (this.tails.get(id) === run) this.tails.delete(id);
    };
    run.then(clear, clear);
    return run;
  }

  private async writeNow(key: ConfigKey, plan: Planner, request: RequestIdentity | undefined): Promise<WriteOutcome> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { replay, current, schema } = this.reader.snapshot(() => {
        const seen = request === undefined ? undefined : this.reader.request(key, request.requestId);
        if (seen !== undefined) return { replay: seen };
        const latest = this.reader.latest(key);
        return { current: latest, schema: this.reader.schema(key, latest?.audit.schemaVersion ?? 0) };
      });
      if (replay !== undefined) return { kind: 'replay', record: replay };
      const decision = plan(current, schema);
      // A plan that changes nothing and records no request id is answered from what was read.
      if (decision.kind === 'unchanged' && request === undefined) return decision;
      const prepared = prepareWrite(key, current, decision, request);
      let result: PreparedResult;
      try {
        result = (await this.call({ op: 'commit', prepared })) as PreparedResult;
      } catch (error: unknown) {
        if (error instanceof CfgdError) throw error;
        throw new CfgdError(
          'unavailable',
          'WRITE_OUTCOME_UNKNOWN',
          'the write was handed to the writer process, which did not confirm it; it is stored as metadata.version or not at all',
          { metadata: { version: String(prepared.version?.[0] ?? prepared.expected) }, cause: error },
        );
      }
      if (result.kind === 'applied') {
        // The next write (and Get) here starts from the version just made, without reading it back.
        if (decision.kind === 'create') this.reader.rememberLatest(decision.next);
        return decision;
      }
      if (result.kind === 'replay') return result;
    }
    throw new CfgdError('unavailable', 'WRITE_CONTENTION', 'too many concurrent writes to this config; retry');
  }

  async setMaxVersions(key: ConfigKey, maxVersions: number | undefined): Promise<boolean> {
    return (await this.call({ op: 'setMaxVersions', key, maxVersions })) as boolean;
  }

  async prune(key: ConfigKey, floor: number): Promise<number> {
    return (await this.call({ op: 'prune', key, floor })) as number;
  }

  async subscribe(scope: SubscriptionScope, wake: Wake): Promise<Unsubscribe> {
    // The writer reports every commit to every worker after it commits, so a listener is live at once.
    return this.subscribers.add(scope, wake);
  }

  get credentials(): CredentialStore {
    return this.credentialStore;
  }

  stats(): StoreStats {
    return { subscriptions: this.subscribers.size, changefeeds: 0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const stop of this.detach) stop();
    this.failPending(new CfgdError('unavailable', 'SERVER_SHUTTING_DOWN', 'cfgd is shutting down; reconnect'));
    this.subscribers.clear();
    this.credentialStore.close();
    if (this.db.open) this.db.close();
  }

  private call(call: WriterCall): Promise<unknown> {
    if (this.closed) {
      return Promise.reject(new CfgdError('unavailable', 'SERVER_SHUTTING_DOWN', 'cfgd is shutting down; reconnect'));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { call, resolve, reject });
      try {
        this.link.send({ cfgd: 'writer', id, call });
      } catch (error: unknown) {
        this.pending.delete(id);
        reject(error);
      }
    });
  }

  private receive(arrived: unknown): void {
    for (const message of received(arrived)) this.handle(message);
  }

  private handle(message: WriterMessage): void {
    if ('committed' in message) {
      for (const [userId, configName] of message.committed) this.subscribers.wake(userId, configName);
      return;
    }
    if ('credentialsChanged' in message) {
      this.credentialStore.changed();
      return;
    }
    if (!('ok' in message)) return;
    const pending = this.pending.get(message.id);
    if (pending === undefined) return;
    this.pending.delete(message.id);
    if (message.ok) pending.resolve(message.value);
    else pending.reject(fromLinkedError(message.error));
  }

  /** The writer process is gone: calls waiting for it fail (a write's outcome is then unknown). */
  private linkLost(): void {
    this.failPending(new Error('the writer process of the embedded store is gone'));
  }

  private failPending(error: Error): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const call of pending) call.reject(error);
  }
}

/**
 * Tokens and bindings in a worker process: read on this process's connection,
 * written through the writer, changes reported by the writer to every worker.
 */
class WorkerCredentials implements CredentialStore {
  private readonly listeners = new Set<{ readonly changed: () => void }>();

  constructor(
    private readonly local: EmbeddedCredentials,
    private readonly forward: (method: CredentialWrite, args: readonly unknown[]) => Promise<unknown>,
  ) {}

  async createToken(token: TokenRecord): Promise<void> {
    await this.forward('createToken', [token]);
  }

  async putToken(token: TokenRecord): Promise<void> {
    await this.forward('putToken', [token]);
  }

  async revokeToken(id: string, at: Date, by: string): Promise<TokenRecord | undefined> {
    return (await this.forward('revokeToken', [id, at, by])) as TokenRecord | undefined;
  }

  token(id: string): Promise<TokenRecord | undefined> {
    return this.local.token(id);
  }

  tokenBySecretHash(secretHash: string): Promise<TokenRecord | undefined> {
    return this.local.tokenBySecretHash(secretHash);
  }

  listTokens(): Promise<TokenRecord[]> {
    return this.local.listTokens();
  }

  async setBinding(binding: BindingRecord): Promise<void> {
    await this.forward('setBinding', [binding]);
  }

  async removeBinding(principal: string): Promise<boolean> {
    return (await this.forward('removeBinding', [principal])) as boolean;
  }

  binding(principal: string): Promise<BindingRecord | undefined> {
    return this.local.binding(principal);
  }

  listBindings(): Promise<BindingRecord[]> {
    return this.local.listBindings();
  }

  async subscribeCredentials(changed: () => void): Promise<Unsubscribe> {
    const listener = { changed };
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** The writer reported a change: a hint to reload. */
  changed(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener.changed();
      } catch {
        // A hint; a failing listener must not stop the others.
      }
    }
  }

  close(): void {
    this.listeners.clear();
    this.local.close();
  }
}
