import rethinkdb from 'rethinkdb';
import type { Logger } from 'pino';
import { CfgdError } from '../../domain/index.js';

/** Where and how to reach RethinkDB; parsed from `rethinkdb://[user[:password]@]host[:port]/db`. */
export interface RethinkDbOptions {
  readonly host: string;
  readonly port: number;
  readonly db: string;
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  /** Longest a query (or a connection attempt) may take before it fails with UNAVAILABLE. */
  readonly timeoutMs: number;
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
  ) {}

  /** Runs a query and returns its result, with cursors read to the end. */
  async run<T>(term: Term, what: string): Promise<T> {
    const result = await this.withTimeout(what, async () => {
      const connection = await this.connect();
      const value = await term.run(connection, { durability: 'hard' });
      return isCursor(value) ? await value.toArray() : value;
    });
    return result as T;
  }

  /** Opens a changefeed; the cursor lives until closed or until the connection breaks. */
  async feed(term: Term, what: string): Promise<Cursor> {
    const cursor = await this.withTimeout(what, async () => term.run(await this.connect()));
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
    if (this.closed) throw unavailable('the store is closed');
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
        });
        connection.on('error', (error: unknown) => this.log.warn({ err: error }, 'database connection error'));
        if (this.closed) {
          await connection.close().catch(() => {});
          throw unavailable('the store is closed');
        }
        this.connection = connection;
        this.log.info({ host, port, db }, 'connected to RethinkDB');
        return connection;
      } finally {
        this.connecting = undefined;
      }
    })();
    return this.connecting;
  }

  private async withTimeout<T>(what: string, action: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // A query that hangs usually means a dead connection: drop it so the next query reconnects.
        const connection = this.connection;
        this.connection = undefined;
        void connection?.close({ noreplyWait: false }).catch(() => {});
        reject(unavailable(`${what} timed out after ${this.options.timeoutMs} ms`));
      }, this.options.timeoutMs);
    });
    try {
      return await Promise.race([action(), timeout]);
    } catch (error: unknown) {
      throw toStoreError(error, what);
    } finally {
      clearTimeout(timer);
    }
  }
}

function unavailable(message: string, cause?: unknown): CfgdError {
  return new CfgdError('unavailable', 'DATABASE_UNAVAILABLE', `the database is unavailable: ${message}`, { cause });
}

/** Connection-level failures become UNAVAILABLE; anything else is passed on as it is. */
export function toStoreError(error: unknown, what: string): unknown {
  if (error instanceof CfgdError) return error;
  const name = (error as { name?: unknown } | undefined)?.name;
  const message = error instanceof Error ? error.message : String(error);
  if (
    name === 'ReqlDriverError' ||
    name === 'ReqlAvailabilityError' ||
    name === 'ReqlOpFailedError' ||
    name === 'ReqlTimeoutError' ||
    /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|socket hang up|Could not connect/i.test(message)
  ) {
    return unavailable(`${what}: ${message.split('\n')[0]}`, error);
  }
  return error;
}

export function isUnavailable(error: unknown): boolean {
  return error instanceof CfgdError && error.kind === 'unavailable';
}
