import type { Logger } from 'pino';
import type { Unsubscribe } from '../store.js';
import type { RethinkConnection } from './connection.js';
import { unavailable } from './errors.js';
import { deferred, sleep, withTimeout, type Deferred } from './promise-helpers.js';
import { BINDINGS, q, TOKENS } from './queries.js';

export interface CredentialFeedOptions {
  readonly connection: RethinkConnection;
  readonly db: string;
  /** How long `ready` waits for the feed to be open. */
  readonly timeoutMs: number;
  readonly log: Logger;
}

/** The tables the feed follows, one cursor each (a union of feeds is not portable: see rethinkdb-notes). */
const TABLES = [TOKENS, BINDINGS] as const;
type Table = (typeof TABLES)[number];

/** A row of a credential feed, as far as it is read: a change, or the server's report of lost changes. */
interface FeedRow {
  readonly error?: string;
}

/**
 * The wake-up feed of `subscribeCredentials`: one per store whatever the
 * number of listeners, opened on first use, made of one changefeed per
 * credential table. Each changefeed is reopened with backoff after any
 * failure. A changefeed can drop changes and cannot be resumed, so every row
 * (a change, or the server's report of skipped changes) calls every listener,
 * and so does the moment the feed is whole again after a cursor was lost:
 * listeners reload from the tables.
 */
export class CredentialFeed {
  private readonly listeners = new Set<{ readonly changed: () => void }>();
  /** The tables whose cursor is open now. */
  private readonly open = new Set<Table>();
  private loops: Promise<void>[] | undefined;
  /** Resolved while every cursor is open. */
  private opened: Deferred = deferred();
  /** A cursor was lost since the feed was last whole: changes may have been missed. */
  private missed = false;
  private stopped = false;
  private readonly stopping: Deferred = deferred();

  constructor(private readonly options: CredentialFeedOptions) {}

  /**
   * Adds a listener, starts the feed if it is not running and resolves once
   * it is open, so that every change from then on calls the listener; rejects
   * with UNAVAILABLE, the listener removed, if it is not open within
   * `timeoutMs` (the feed keeps trying).
   */
  async subscribe(changed: () => void): Promise<Unsubscribe> {
    if (this.stopped) throw unavailable('failed', 'the store is closed');
    const listener = { changed };
    this.listeners.add(listener);
    const unsubscribe = (): void => {
      this.listeners.delete(listener);
    };
    this.loops ??= TABLES.map((table) => this.run(table));
    try {
      await withTimeout(this.opened.promise, this.options.timeoutMs, 'the credential feed is not running');
    } catch (error: unknown) {
      unsubscribe();
      throw error;
    }
    return unsubscribe;
  }

  /** True while every cursor of the feed is open. */
  get isOpen(): boolean {
    return this.open.size === TABLES.length;
  }

  /** Listeners registered now. */
  get size(): number {
    return this.listeners.size;
  }

  /**
   * Stops the feed for good and drops the listeners. Cursors are not closed
   * here (closing one leaves its pending read pending for ever, see
   * `ChangeFeed.stop`): the owner closes the connection, which ends them, then
   * awaits `ended`.
   */
  stop(): void {
    this.stopped = true;
    this.stopping.resolve();
    this.listeners.clear();
    this.open.clear();
  }

  /** Resolves when every loop has ended after `stop` (at once if the feed never ran). */
  async ended(): Promise<void> {
    await Promise.all(this.loops ?? []);
  }

  private async run(table: Table): Promise<void> {
    const { connection, db, log } = this.options;
    let backoff = 50;
    while (!this.stopped) {
      try {
        // Stopping does not wait for a connection attempt in progress (it can take up to the timeout):
        // one that succeeds after the store closed is closed at once by the connection manager.
        const cursor = await Promise.race([
          connection.feed(q.credentialFeed(db, table), `open the feed of ${table}`),
          this.stopping.promise.then(() => undefined),
        ]);
        if (this.stopped || cursor === undefined) break;
        this.open.add(table);
        backoff = 50;
        if (this.isOpen) {
          this.opened.resolve();
          if (this.missed) {
            this.missed = false;
            log.info('credential feed reopened');
            this.notify();
          }
        }
        for (;;) {
          const row = (await cursor.next()) as FeedRow | null;
          if (row?.error !== undefined) log.warn({ table, error: row.error }, 'credential feed reported lost changes');
          this.notify();
        }
      } catch (error: unknown) {
        if (this.stopped) break;
        this.open.delete(table);
        if (this.opened.settled) this.opened = deferred();
        this.missed = true;
        log.warn({ err: error, table }, 'credential feed lost; reopening');
        await Promise.race([sleep(backoff), this.stopping.promise]);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
    this.open.delete(table);
  }

  private notify(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener.changed();
      } catch {
        // A notification is a hint; a failing listener must not stop the feed.
      }
    }
  }
}
