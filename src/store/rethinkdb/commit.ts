import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  CfgdError,
  configUuid,
  type ConfigKey,
  type ConfigSchema,
  type ConfigVersion,
  type Planner,
  type RequestIdentity,
  type RequestRecord,
  type WriteOutcome,
  type WritePlan,
} from '../../domain/index.js';
import { keyId } from '../subscribers.js';
import type { RethinkConnection } from './connection.js';
import { DatabaseUnavailableError, isUnavailable, unavailable } from './errors.js';
import { sleep } from './promise-helpers.js';
import {
  q,
  requestDocId,
  versionId,
  type HeadDoc,
  type RequestDoc,
  type VersionDoc,
  type WriteResult,
} from './queries.js';

/** Points between the database calls of a write, where tests inject failures. */
export type WriteStep = 'before-read' | 'before-insert' | 'after-insert' | 'after-head';

/** Test hook: called at each step of a write; a throw there simulates a crash at that point. */
export type WriteFaults = (step: WriteStep) => void | Promise<void>;

/** What the write path reads: the latest version, looking past a stale head, and the schema it names. */
export interface LatestReader {
  latest(key: ConfigKey): Promise<ConfigVersion | undefined>;
  schema(key: ConfigKey, schemaVersion: number): Promise<ConfigSchema | undefined>;
}

export interface CommitOptions {
  readonly connection: RethinkConnection;
  readonly db: string;
  /** The deadline of a whole write, its wait behind earlier writes to the same config included. */
  readonly timeoutMs: number;
  readonly reader: LatestReader;
  readonly log: Logger;
  readonly faults?: WriteFaults | undefined;
}

/** Attempts before a write under extreme contention gives up with UNAVAILABLE. */
const MAX_ATTEMPTS = 1000;

/**
 * The write path of the RethinkDB backend. RethinkDB is atomic per document
 * only, so a write is:
 *
 * 1. read the latest version: the head (a hint) and the versions after it,
 *    then the schema version it names (immutable, so usually cached);
 * 2. plan the write against both (pure; schema check, diff, compare-and-set);
 * 3. insert the new version document, whose primary key is (config, version),
 *    with `conflict: 'error'` — the commit point and the compare-and-set:
 *    of two writers of version N one wins, the other re-reads and retries;
 * 4. roll the head forward (never back).
 *
 * A crash before 3 writes nothing; after 3 the version is complete and
 * visible, and a stale head only makes readers look a few documents further.
 * Because each write inserts the version after the latest one it read, and
 * only one insert of a key can win, versions stay contiguous. A schema change
 * is a version too (its document carries the schema), so a write planned
 * against an older schema loses its insert to it and plans again under the
 * new one, on any node: no write commits against a replaced schema.
 */
export class Committer {
  private readonly writeQueues = new Map<string, Promise<void>>();

  constructor(private readonly options: CommitOptions) {}

  /**
   * `ConfigStore.write`: resolves with the plan that took effect once its
   * version is stored; rejects within `timeoutMs` otherwise — with a clean
   * failure only when nothing was written and nothing will be, and with
   * WRITE_OUTCOME_UNKNOWN (naming the version) when an insert was sent and
   * not confirmed.
   */
  write(key: ConfigKey, plan: Planner, request?: RequestIdentity): Promise<WriteOutcome> {
    // Writes to one config from this process take turns, so that they do not race each other for
    // the same version; the insert still settles races with other processes.
    const id = keyId(key);
    const pending = new PendingWrite();
    const previous = this.writeQueues.get(id) ?? Promise.resolve();
    const run = previous.then(() => this.writeOnce(key, plan, pending, request));
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
  private answer(run: Promise<WriteOutcome>, pending: PendingWrite): Promise<WriteOutcome> {
    const { timeoutMs, log } = this.options;
    return new Promise<WriteOutcome>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.answered = true;
        if (pending.committed !== undefined) resolve(pending.committed);
        else if (pending.inDoubt !== undefined) {
          pending.toldUnknown = true;
          reject(outcomeUnknown(pending.inDoubt, timeoutMs));
        } else reject(unavailable('failed', `the write did not complete within ${timeoutMs} ms; nothing was written`));
      }, timeoutMs);
      run.then(
        (result) => {
          clearTimeout(timer);
          if (!pending.answered) {
            pending.answered = true;
            resolve(result);
          } else if (pending.toldUnknown && result.kind === 'create') {
            // For operators matching a client's report: its insert in doubt did land.
            log.info({ version: result.next.version }, 'a write answered WRITE_OUTCOME_UNKNOWN was stored');
          }
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (pending.answered) return;
          pending.answered = true;
          // A failure while an insert is in doubt is not a clean failure: the insert may still land.
          reject(
            pending.inDoubt !== undefined && error !== ABANDONED
              ? outcomeUnknown(pending.inDoubt, undefined, error)
              : error,
          );
        },
      );
    });
  }

  private async writeOnce(
    key: ConfigKey,
    plan: Planner,
    pending: PendingWrite,
    request: RequestIdentity | undefined,
  ): Promise<WriteOutcome> {
    const { faults, reader, log } = this.options;
    const configId = configUuid(key);
    // One id for every attempt of this write: whichever attempt lands is recognised as this write.
    const writeId = randomUUID();
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      if (pending.answered) throw ABANDONED;
      await faults?.('before-read');
      const current = await reader.latest(key);
      // A retry finds what its first call did, here or on another node. Looked up after the read of
      // the latest version, so a version it wrote before that read is found (the index is updated
      // with its document); one it writes later takes the slot this attempt plans for, and the
      // attempt, losing the insert, comes back here.
      const seen = request === undefined ? undefined : await this.requestRecord(configId, request.requestId);
      if (seen !== undefined) return { kind: 'replay', record: seen };
      const decision = plan(current, await reader.schema(key, current?.audit.schemaVersion ?? 0));
      if (decision.kind === 'unchanged') {
        if (request !== undefined) await this.recordUnchanged(configId, request, decision.current.version);
        return decision;
      }
      const doc = toDoc(configId, decision, writeId, request);
      await faults?.('before-insert');
      if ((await this.commit(doc, pending)) === 'theirs') {
        // Another writer took this version: back off a little, re-read and plan again.
        await sleep(Math.random() * Math.min(attempt, 10));
        continue;
      }
      pending.committed = decision;
      pending.inDoubt = undefined;
      await faults?.('after-insert');
      try {
        const head = { id: configId, user_id: key.userId, config_name: key.configName, version: doc.version };
        await this.rollHead(head);
      } catch (error: unknown) {
        // The version is committed; the head is only a hint that readers roll forward themselves.
        log.warn({ err: error, version: doc.version }, 'could not roll the head forward');
      }
      await faults?.('after-head');
      return decision;
    }
    throw new CfgdError('unavailable', 'WRITE_CONTENTION', 'too many concurrent writes to this config; retry');
  }

  /**
   * What an earlier request with this id did: the version that carries it
   * (stored with it, in the commit), or the record of a request that changed
   * nothing; undefined when the id is new.
   */
  private async requestRecord(configId: string, requestId: string): Promise<RequestRecord | undefined> {
    const found = await this.options.connection.run<{ versions: VersionDoc[]; unchanged: RequestDoc | null }>(
      q.requestRecords(this.options.db, configId, requestId),
      'look up a request id',
    );
    const version = found.versions[0];
    if (version !== undefined) {
      return { requestId, fingerprint: version.request_fp ?? '', version: version.version, changed: true };
    }
    // A request that changed nothing, or one whose version has been pruned since.
    const recorded = found.unchanged;
    if (recorded === null) return undefined;
    return { requestId, fingerprint: recorded.fingerprint, version: recorded.version, changed: recorded.changed };
  }

  /** Remembers a request with an id that changed nothing (two nodes recording the same one agree). */
  private async recordUnchanged(configId: string, request: RequestIdentity, version: number): Promise<void> {
    const doc: RequestDoc = {
      id: requestDocId(configId, request.requestId),
      config_id: configId,
      request_id: request.requestId,
      fingerprint: request.fingerprint,
      version,
      changed: false,
      created_at: Date.now(),
    };
    await this.options.connection.run<WriteResult>(q.insertRequest(this.options.db, doc), 'record a request id');
  }

  /**
   * Moves the head forward, creating it for a config's first version. (A
   * replace returning a document inserts a missing one on RethinkDB, but some
   * compatible servers skip missing documents, so creation is its own insert.)
   */
  private async rollHead(head: HeadDoc): Promise<void> {
    const { connection, db } = this.options;
    const what = 'roll the head forward';
    const rolled = await connection.run<WriteResult>(q.rollHead(db, head), what);
    if (rolled.skipped !== 1) return;
    const created = await connection.run<WriteResult>(q.insertHead(db, head), 'create the head');
    // Another writer created it meanwhile: move theirs forward (never back).
    if (created.inserted !== 1) await connection.run<WriteResult>(q.rollHead(db, head), what);
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
    const { connection, db, log } = this.options;
    const send = (): void => {
      // Nothing is sent for a caller who has been answered: a write reported as failed never runs later.
      if (pending.answered) throw ABANDONED;
      pending.inDoubt = doc.version;
    };
    let indeterminate = false;
    for (let backoff = 25; ; backoff = Math.min(backoff * 2, 500)) {
      let result: WriteResult;
      try {
        result = await connection.run<WriteResult>(q.insertVersion(db, doc), 'insert a version', send);
      } catch (error: unknown) {
        if (error === ABANDONED) throw error;
        if (!(error instanceof DatabaseUnavailableError) || (error.outcome === 'failed' && !indeterminate)) {
          // Not performed, and no earlier attempt can land: a clean failure.
          if (!indeterminate) pending.inDoubt = undefined;
          throw error;
        }
        indeterminate ||= error.outcome === 'indeterminate';
        log.info({ err: error, version: doc.version }, 'insert of a version in doubt; settling it');
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
    const { connection, db } = this.options;
    for (let backoff = 25; ; backoff = Math.min(backoff * 2, 500)) {
      if (pending.answered) throw ABANDONED;
      try {
        const stored = await connection.run<VersionDoc | null>(q.version(db, doc.id), 'check who holds a version');
        if (stored === null) throw new Error(`version ${doc.id} was reported taken but is missing`);
        return stored.write_id;
      } catch (error: unknown) {
        if (!isUnavailable(error)) throw error;
        await sleep(backoff);
      }
    }
  }
}

function toDoc(
  configId: string,
  plan: Extract<WritePlan, { kind: 'create' }>,
  writeId: string,
  request: RequestIdentity | undefined,
): VersionDoc {
  const { next: version, schema } = plan;
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
    operation: version.audit.operation,
    schema_version: version.audit.schemaVersion,
    has_values: version.hasValues,
    ...(version.audit.rollbackTo === undefined ? {} : { rollback_to: version.audit.rollbackTo }),
    ...(version.blame === undefined ? {} : { blame_json: JSON.stringify(version.blame) }),
    ...(version.audit.hash === undefined
      ? {}
      : { hash: version.audit.hash, previous_hash: version.audit.previousHash ?? '' }),
    ...(request === undefined
      ? {}
      : { request_key: [configId, request.requestId] as const, request_fp: request.fingerprint }),
    ...(schema === undefined
      ? {}
      : { schema_json: JSON.stringify(schema.schema), schema_key: [configId, schema.schemaVersion] as const }),
  };
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
// Not a CfgdError: it never reaches a client, so it has no reason in the catalog.
const ABANDONED = new Error('the write was abandoned after its caller was answered');

function outcomeUnknown(version: number, timeoutMs?: number, cause?: unknown): CfgdError {
  const why =
    timeoutMs === undefined
      ? 'the database did not confirm the write'
      : `the database did not confirm the write within ${timeoutMs} ms`;
  return new CfgdError(
    'unavailable',
    'WRITE_OUTCOME_UNKNOWN',
    `${why}: it may or may not have been stored, as version ${version} if at all; read the config back before retrying`,
    { metadata: { version: String(version) }, cause },
  );
}
