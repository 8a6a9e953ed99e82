import type { Logger } from 'pino';
import type { StoreEvents } from '../store.js';
import type { Subscribers } from '../subscribers.js';
import type { Cursor, RethinkConnection } from './connection.js';
import { deferred, sleep, withTimeout, type Deferred } from './promise-helpers.js';
import { q } from './queries.js';

export interface ChangeFeedOptions {
  readonly connection: RethinkConnection;
  readonly db: string;
  /** How long `ready` waits for the feed to be open. */
  readonly timeoutMs: number;
  /** Who is woken by the feed. */
  readonly subscribers: Subscribers;
  readonly log: Logger;
  readonly events: StoreEvents;
}

/** A row of the versions feed, as far as it is read: a change, or the server's report of lost changes. */
interface FeedRow {
  readonly new_val?: { readonly user_id?: string; readonly config_name?: string };
  readonly error?: string;
}

/**
 * One changefeed on the versions table for the whole process, whatever the
 * number of watchers, opened on first use and reopened with backoff after any
 * failure. A changefeed can drop changes and cannot be resumed, so it is only
 * a wake-up: whenever it (re)starts or reports an error every subscriber is
 * woken to re-read from the table.
 */
export class ChangeFeed {
  private cursor: Cursor | undefined;
  private loop: Promise<void> | undefined;
  private opened: Deferred = deferred();
  private stopped = false;

  constructor(private readonly options: ChangeFeedOptions) {}

  /**
   * Starts the feed if it is not running and resolves once it is open, so
   * that every commit from then on wakes the subscribers; rejects with
   * UNAVAILABLE if it is not open within `timeoutMs` (it keeps trying).
   */
  ready(): Promise<void> {
    this.loop ??= this.run();
    return withTimeout(this.opened.promise, this.options.timeoutMs, 'the change feed is not running');
  }

  /** True while the feed is open. */
  get open(): boolean {
    return this.cursor !== undefined;
  }

  /**
   * Stops the feed for good. The cursor is not closed here: closing the
   * connection ends it (its pending read fails), whereas closing the cursor
   * first would leave that read pending for ever. So the owner closes the
   * connection after this, then awaits `ended`.
   */
  stop(): void {
    this.stopped = true;
    this.cursor = undefined;
  }

  /** Resolves when the loop has ended after `stop` (at once if it never ran). */
  async ended(): Promise<void> {
    await this.loop;
  }

  private async run(): Promise<void> {
    const { connection, db, subscribers, log } = this.options;
    let backoff = 50;
    let restarted = false;
    while (!this.stopped) {
      try {
        const feed = await connection.feed(q.versionFeed(db), 'open the change feed');
        if (this.stopped) break;
        this.cursor = feed;
        this.opened.resolve();
        backoff = 50;
        if (restarted) {
          log.info('change feed reopened');
          this.options.events.feedRestarted();
          subscribers.wakeAll();
        }
        for (;;) {
          const row = (await feed.next()) as FeedRow;
          if (row.error !== undefined) {
            log.warn({ error: row.error }, 'change feed reported lost changes');
            subscribers.wakeAll();
          } else if (row.new_val?.user_id !== undefined && row.new_val.config_name !== undefined) {
            subscribers.wake(row.new_val.user_id, row.new_val.config_name);
          }
        }
      } catch (error: unknown) {
        if (this.stopped) break;
        this.cursor = undefined;
        if (this.opened.settled) this.opened = deferred();
        restarted = true;
        log.warn({ err: error }, 'change feed lost; reopening');
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 2000);
      }
    }
    this.cursor = undefined;
  }
}
