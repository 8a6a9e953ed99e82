import rethinkdb from 'rethinkdb';
import type { Logger } from 'pino';
import { UNHEARD, type StoreEvents } from '../store.js';
import { classifyError, unavailable } from './errors.js';

/** Where and how to reach RethinkDB; parsed from `rethinkdb://[user[:password]@]host[:port]/db`. */
export interface RethinkDbOptions {
  readonly host: string;
  readonly port: number;
  readonly db: string;
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  /** Longest a query (or a connection attempt) may take before it fails with UNAVAILABLE. */
  readonly timeoutMs: number;
  /** Replicas of each table, set at bootstrap; undefined leaves them as they are. */
  readonly replicas?: number | undefined;
}

/**
 * A ReQL term as far as this backend needs it. `@types/rethinkdb` lacks much of
 * the API (minval/maxval, branch, point feeds …), so queries are built untyped
 * in `queries.ts` and typed at its boundary instead of cast throughout.
 */
export interface Term {
  run(connection: rethinkdb.Connection, options?: object): Promise<unknown>;
}

/** The driver's cursor, as far as this backend uses it. */
export interface Cursor {
  next(): Promise<unknown>;
  toArray(): Promise<unknown[]>;
}

function isCursor(value: unknown): value is Cursor {
  return typeof value === 'object' && value !== null && typeof (value as Cursor).toArray === 'function';
}

/**
 * One multiplexed connection per process, made lazily and made again after it
 * breaks (the driver has no pool and no reconnect). Every query gets a
 * timeout; connection failures and timeouts become UNAVAILABLE.
 */
export class RethinkConnection {
  private connection: rethinkdb.Connection | undefined;
  private connecting: Promise<rethinkdb.Connection> | undefined;
  private closed = false;

  constructor(
    readonly options: RethinkDbOptions,
    private readonly log: Logger,
    private readonly events: StoreEvents = UNHEARD,
  ) {}

  /**
   * Runs a query and returns its result, with cursors read to the end.
   * Failures of availability become `DatabaseUnavailableError` (UNAVAILABLE)
   * saying whether the query may have taken effect. `beforeSend` runs
   * synchronously just before the query is handed to the connection; if it
   * throws, the query is not sent.
   */
  async run<T>(term: Term, what: string, beforeSend?: () => void): Promise<T> {
    const result = await this.withTimeout(what, async (markSent) => {
      const connection = await this.connect();
      beforeSend?.();
      markSent();
      const value = await term.run(connection, { durability: 'hard' });
      return isCursor(value) ? await value.toArray() : value;
    });
    return result as T;
  }

  /** Opens a changefeed; the cursor lives until closed or until the connection breaks. */
  async feed(term: Term, what: string): Promise<Cursor> {
    const cursor = await this.withTimeout(what, async (markSent) => {
      const connection = await this.connect();
      markSent();
      return term.run(connection);
    });
    if (!isCursor(cursor)) throw new Error(`${what} did not return a cursor`);
    return cursor;
  }

  async close(): Promise<void> {
    this.closed = true;
    const connection = this.connection;
    this.connection = undefined;
    await connection?.close({ noreplyWait: false }).catch(() => {});
  }

  private async connect(): Promise<rethinkdb.Connection> {
    if (this.closed) throw unavailable('failed', 'the store is closed');
    if (this.connection?.open) return this.connection;
    this.connecting ??= (async () => {
      const { host, port, db, user, password, timeoutMs } = this.options;
      try {
        const connection = await rethinkdb.connect({
          host,
          port,
          db,
          user: user ?? 'admin',
          password: password ?? '',
          timeout: Math.max(1, Math.ceil(timeoutMs / 1000)),
        });
        connection.on('close', () => {
          if (this.connection === connection) this.connection = undefined;
          this.events.connection(false);
        });
        connection.on('error', (error: unknown) => this.log.warn({ err: error }, 'database connection error'));
        if (this.closed) {
          await connection.close().catch(() => {});
          throw unavailable('failed', 'the store is closed');
        }
        this.connection = connection;
        this.events.connection(true);
        this.log.info({ host, port, db }, 'connected to RethinkDB');
        return connection;
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  private async withTimeout<T>(what: string, action: (markSent: () => void) => Promise<T>): Promise<T> {
    let sent = false;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    // A query answered with a timeout before it was sent must never be sent afterwards.
    const markSent = (): void => {
      if (timedOut) throw unavailable('failed', `${what} timed out before it was sent`);
      sent = true;
    };
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        // A query that hangs usually means a dead connection: drop it so the next query reconnects.
        const connection = this.connection;
        this.connection = undefined;
        void connection?.close({ noreplyWait: false }).catch(() => {});
        reject(unavailable(sent ? 'indeterminate' : 'failed', `${what} timed out after ${this.options.timeoutMs} ms`));
      }, this.options.timeoutMs);
    });
    try {
      return await Promise.race([action(markSent), timeout]);
    } catch (error: unknown) {
      throw classifyError(error, what, sent);
    } finally {
      clearTimeout(timer);
    }
  }
}
