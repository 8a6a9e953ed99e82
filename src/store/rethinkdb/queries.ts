import { createHash } from 'node:crypto';
import rethinkdb from 'rethinkdb';
import type { StoredBindingRow, StoredTokenRow } from '../stored-credentials.js';
import type { Term } from './connection.js';

// @types/rethinkdb 2.3.21 lacks r.minval/maxval, r.branch on rows, getAll with many keys and more;
// the driver is used untyped in this one file (eslint.config.js allows `any` here and nowhere else),
// and every function below types its result.
const r: any = rethinkdb;

export const VERSIONS = 'config_versions';
export const HEADS = 'config_heads';
/**
 * Secondary index of the versions table: `[config_id, schema_version]` of the versions that set a
 * schema (only they have the field, so only they are in the index).
 */
export const VERSIONS_BY_SCHEMA = 'schema_key';
/**
 * Secondary index of the versions table: `[config_id, request_id]` of the versions written by a
 * request with an id (only they have the field).
 */
export const VERSIONS_BY_REQUEST = 'request_key';
/**
 * Requests with an id that changed nothing, and those whose version was pruned, keyed by
 * `requestDocId` (the others are found on their version).
 */
export const REQUESTS = 'cfgd_requests';
/** Schemas whose version was pruned. */
export const SCHEMA_ARCHIVE = 'cfgd_schema_archive';
/** Secondary index of the heads table: a user's configs. */
export const HEADS_BY_USER = 'user_id';
/** cfgd's own bookkeeping: the bootstrap lease and the record of the schema in place. */
export const META = 'cfgd_meta';
/** Tokens, keyed by their id. */
export const TOKENS = 'cfgd_tokens';
/** Secondary index of the tokens table: the lookup of a presented secret (not unique: RethinkDB has no such index). */
export const TOKENS_BY_SECRET_HASH = 'secret_hash';
/** Bindings, keyed by `bindingId(principal)`. */
export const BINDINGS = 'cfgd_bindings';
/** Instances' reports on configs, one per config and instance, keyed by `reportDocId`. */
export const INSTANCE_REPORTS = 'cfgd_instance_reports';
/**
 * Secondary index of the reports table: `[config_id, instance_id]`, the reports of one config in
 * the order of their instance ids.
 */
export const REPORTS_BY_INSTANCE = 'report_key';
/** Secondary index of the reports table: when each report was received (epoch ms), for expiry. */
export const REPORTS_BY_TIME = 'reported_at';

/** One stored version: the commit point. Values and changes are stored as JSON text so that no
 *  user key (such as `$reql_type$`) is ever read as a ReQL pseudo-type. */
export interface VersionDoc {
  readonly id: string;
  readonly config_id: string;
  readonly user_id: string;
  readonly config_name: string;
  readonly version: number;
  readonly values_json: string;
  readonly changes_json: string;
  readonly author: string;
  readonly created_at: number;
  /** Random per write attempt: tells a writer whether an indeterminate insert was its own. */
  readonly write_id: string;
  /** Absent on versions written before schemas existed: 'put'. */
  readonly operation?: string;
  /** The schema version in effect from this version on; absent: 0 (none). */
  readonly schema_version?: number;
  /** False for a version without values (a schema set before the first values); absent: true. */
  readonly has_values?: boolean;
  /** Written by a request with an id: `[config_id, request_id]`, its key in `VERSIONS_BY_REQUEST`. */
  readonly request_key?: readonly [string, string];
  /** Written by a request with an id: the request's fingerprint. */
  readonly request_fp?: string;
  /** On a rollback: the version whose values it restored. */
  readonly rollback_to?: number;
  /** Who last set each key, as JSON text (absent on versions written before cfgd kept it). */
  readonly blame_json?: string;
  /** The hash chain (absent on versions written before it). */
  readonly hash?: string;
  readonly previous_hash?: string;
  /** On a version that sets a schema: the schema, as JSON text. */
  readonly schema_json?: string;
  /** On a version that sets a schema: `[config_id, schema_version]`, its key in `VERSIONS_BY_SCHEMA`. */
  readonly schema_key?: readonly [string, number];
}

/** A request with an id that changed nothing: what a retry of it answers. */
export interface RequestDoc {
  readonly id: string;
  readonly config_id: string;
  readonly request_id: string;
  readonly fingerprint: string;
  readonly version: number;
  readonly changed: boolean;
  readonly created_at: number;
}

/** The requests table's primary key: the config's UUID and the request id (73 characters). */
export function requestDocId(configId: string, requestId: string): string {
  return `${configId}:${requestId}`;
}

/**
 * The head: a projection of the latest version, rolled forward after each commit, and the
 * config's retention: its first kept version (absent: 1), raised before anything is pruned, and
 * its own limit on kept versions (absent: the server's).
 */
export interface HeadDoc {
  readonly id: string;
  readonly user_id: string;
  readonly config_name: string;
  readonly version: number;
  readonly first_kept?: number;
  readonly max_versions?: number | null;
}

/** What pruning reads of a version before it removes it: what must outlive it. */
export interface PrunedDoc {
  readonly id: string;
  readonly version: number;
  readonly author: string;
  readonly created_at: number;
  readonly schema_version?: number;
  readonly schema_json?: string;
  readonly request_key?: readonly [string, string];
  readonly request_fp?: string;
}

/** A schema whose version was pruned, kept on its own, keyed by `schemaArchiveId`. */
export interface SchemaArchiveDoc {
  readonly id: string;
  readonly config_id: string;
  readonly schema_version: number;
  readonly version: number;
  readonly schema_json: string;
  readonly author: string;
  readonly created_at: number;
}

export function schemaArchiveId(configId: string, schemaVersion: number): string {
  return `${configId}:${String(schemaVersion).padStart(16, '0')}`;
}

/**
 * A binding as stored: the shared row (see `stored-credentials.ts`), keyed by `id`, which is
 * `bindingId(principal)`. Tokens are stored as the shared `StoredTokenRow` itself, keyed by their id.
 */
export type BindingDoc = StoredBindingRow & { readonly id: string };

export interface WriteResult {
  readonly inserted?: number;
  readonly replaced?: number;
  readonly deleted?: number;
  readonly unchanged?: number;
  readonly errors?: number;
  readonly skipped?: number;
  readonly first_error?: string;
}

/** A write's result with `returnChanges`: the documents before and after (null where there is none). */
export interface ChangesResult<T> extends WriteResult {
  readonly changes?: readonly { readonly old_val: T | null; readonly new_val: T | null }[];
}

/** The versions table's primary key: the config's UUID and the zero-padded version (53 characters). */
export function versionId(configId: string, version: number): string {
  return `${configId}:${String(version).padStart(16, '0')}`;
}

/**
 * The bindings table's primary key: the SHA-256 (hex) of the principal. A principal can be longer
 * than the 127 characters a primary key may have (a certificate's subject), a hash cannot.
 */
export function bindingId(principal: string): string {
  return createHash('sha256').update(principal, 'utf8').digest('hex');
}

/**
 * An instance's report on a config, as stored: one document per config and instance, replaced
 * whole by the next report; the time in epoch ms (as every time this backend stores).
 */
export interface ReportDoc {
  readonly id: string;
  readonly config_id: string;
  readonly user_id: string;
  readonly config_name: string;
  readonly instance_id: string;
  /** `[config_id, instance_id]`: its key in `REPORTS_BY_INSTANCE`. */
  readonly report_key: readonly [string, string];
  readonly applied_version: number;
  readonly failed_version: number;
  readonly error: string;
  readonly reported_at: number;
  readonly reported_by: string;
}

/**
 * The reports table's primary key: the SHA-256 (hex) of the config's UUID and the instance id. The
 * two side by side can be longer than the 127 characters a primary key may have (an instance id
 * has up to 128), a hash cannot; `/` is in neither, so no two pairs give one input.
 */
export function reportDocId(configId: string, instanceId: string): string {
  return createHash('sha256').update(`${configId}/${instanceId}`, 'utf8').digest('hex');
}

/** A row of `rethinkdb.table_config` or `rethinkdb.db_config`, as far as bootstrap reads it. */
export interface ConfigRow {
  readonly id: string;
  readonly name: string;
  /** table_config only: the database (its name, or its id when asked by id). */
  readonly db?: string;
  /** table_config only: the replicas of each shard. */
  readonly shards?: readonly { readonly replicas: readonly string[] }[];
}

/** The lease row of the meta table: who may create or repair tables now, and until when (epoch seconds). */
export interface LeaseDoc {
  readonly id: 'lease';
  readonly holder: string;
  readonly expires_at: number;
}

/** The schema row of the meta table: the schema in place and the id of each table it certified. */
export interface SchemaDoc {
  readonly id: 'schema';
  readonly schema: string;
  readonly tables: Readonly<Record<string, string>>;
}

export const q = {
  dbList: (): Term => r.dbList(),
  dbCreate: (db: string): Term => r.dbCreate(db),
  tableList: (db: string): Term => r.db(db).tableList(),
  tableCreate: (db: string, table: string): Term => r.db(db).tableCreate(table),
  isEmpty: (db: string, table: string): Term => r.db(db).table(table).isEmpty(),
  reconfigure: (db: string, table: string, replicas: number): Term =>
    r.db(db).table(table).reconfigure({ shards: 1, replicas }),

  indexList: (db: string, table: string): Term => r.db(db).table(table).indexList(),
  indexCreate: (db: string, table: string, index: string): Term => r.db(db).table(table).indexCreate(index),
  indexWait: (db: string, table: string, index: string): Term => r.db(db).table(table).indexWait(index),

  /** RethinkDB's own record of databases and tables: the only place duplicate names show (admin only). */
  databaseCopies: (db: string): Term => r.db('rethinkdb').table('db_config').filter({ name: db }).coerceTo('array'),
  tableCopies: (db: string): Term =>
    r.db('rethinkdb').table('table_config').filter({ db }).pluck('id', 'name', 'db', 'shards').coerceTo('array'),
  /** Every table with its database given by id: which copy of a duplicated database holds tables. */
  tablesByDatabaseId: (): Term =>
    r.db('rethinkdb').table('table_config', { identifierFormat: 'uuid' }).pluck('id', 'db').coerceTo('array'),
  renameTable: (tableId: string, name: string): Term =>
    r.db('rethinkdb').table('table_config').get(tableId).update({ name }),
  dropTableById: (tableId: string): Term => r.db('rethinkdb').table('table_config').get(tableId).delete(),
  dropDatabaseById: (dbId: string): Term => r.db('rethinkdb').table('db_config').get(dbId).delete(),

  /** Takes the lease if nobody holds it (the primary key settles races between nodes). */
  insertLease: (db: string, holder: string, seconds: number): Term =>
    r
      .db(db)
      .table(META)
      .insert({ id: 'lease', holder, expires_at: r.now().toEpochTime().add(seconds) }, { conflict: 'error' }),
  lease: (db: string): Term => r.db(db).table(META).get('lease'),
  /** Removes the lease if it is held by `holder`, or if it has expired (its holder died). */
  dropLease: (db: string, holder: string | undefined): Term =>
    r
      .db(db)
      .table(META)
      .get('lease')
      .replace((row: any) =>
        r.branch(
          row
            .ne(null)
            .and(holder === undefined ? row('expires_at').lt(r.now().toEpochTime()) : row('holder').eq(holder)),
          null,
          row,
        ),
      ),
  schemaDoc: (db: string): Term => r.db(db).table(META).get('schema'),
  writeSchemaDoc: (db: string, doc: SchemaDoc): Term => r.db(db).table(META).insert(doc, { conflict: 'replace' }),

  head: (db: string, configId: string): Term => r.db(db).table(HEADS).get(configId),
  headsOfUser: (db: string, userId: string): Term =>
    r.db(db).table(HEADS).getAll(userId, { index: HEADS_BY_USER }).coerceTo('array'),
  /**
   * The versions with these primary keys, in the same order, null where missing. Point reads by
   * primary key cost the same however long the history is (on reqlite too, where secondary
   * indexes and getAll scan the whole table).
   */
  versionsById: (db: string, ids: string[]): Term => r.expr(ids).map((id: unknown) => r.db(db).table(VERSIONS).get(id)),
  /** As `versionsById`, without the values and without the missing ones. */
  auditById: (db: string, ids: string[]): Term =>
    r
      .expr(ids)
      .map((id: unknown) => r.db(db).table(VERSIONS).get(id))
      .filter((doc: any) => doc.ne(null))
      .map((doc: any) => doc.without('values_json', 'schema_json', 'blame_json')),
  /** The version a request id wrote (at most one), and the record of one that changed nothing. */
  requestRecords: (db: string, configId: string, requestId: string): Term =>
    r.expr({
      versions: r
        .db(db)
        .table(VERSIONS)
        .getAll([configId, requestId], { index: VERSIONS_BY_REQUEST })
        .pluck('version', 'request_fp')
        .coerceTo('array'),
      unchanged: r.db(db).table(REQUESTS).get(requestDocId(configId, requestId)),
    }),
  /** Records a request that changed nothing; a second record of the same id is a harmless duplicate. */
  insertRequest: (db: string, doc: RequestDoc): Term => r.db(db).table(REQUESTS).insert(doc, { conflict: 'error' }),
  /** The versions that set these schema versions of a config, in no particular order. */
  schemaVersions: (db: string, configId: string, schemaVersions: number[]): Term =>
    r
      .db(db)
      .table(VERSIONS)
      .getAll(r.args(schemaVersions.map((schemaVersion) => [configId, schemaVersion])), { index: VERSIONS_BY_SCHEMA })
      .coerceTo('array'),
  version: (db: string, id: string): Term => r.db(db).table(VERSIONS).get(id),
  /** The commit point and the compare-and-set: the primary key is unique, so one insert wins. */
  insertVersion: (db: string, doc: VersionDoc): Term => r.db(db).table(VERSIONS).insert(doc, { conflict: 'error' }),
  /** Creates a config's head; fails with a duplicate key error when it exists. */
  insertHead: (db: string, head: HeadDoc): Term => r.db(db).table(HEADS).insert(head, { conflict: 'error' }),
  /** Moves an existing head forward to `head.version`, never back, keeping its retention; skips a missing head. */
  rollHead: (db: string, head: HeadDoc): Term =>
    r
      .db(db)
      .table(HEADS)
      .get(head.id)
      .replace((row: any) =>
        r.branch(
          row.eq(null),
          head,
          r.branch(row('version').lt(head.version), row.merge({ version: head.version }), row),
        ),
      ),
  /** Sets (null: clears) a config's own limit on kept versions; skips a missing head. */
  setMaxVersions: (db: string, id: string, maxVersions: number | null): Term =>
    r.db(db).table(HEADS).get(id).update({ max_versions: maxVersions }),
  /** Raises the first kept version to `floor`, never lowering it and never past the head's version. */
  raiseFloor: (db: string, id: string, floor: number): Term =>
    r
      .db(db)
      .table(HEADS)
      .get(id)
      .update(
        (row: any) =>
          r.branch(
            row('first_kept')
              .default(1)
              .lt(r.min([floor, row('version')])),
            { first_kept: r.min([floor, row('version')]) },
            {},
          ),
        { returnChanges: 'always' },
      ),
  /** Up to `limit` versions of a config below `floor`, oldest first, with what must outlive them. */
  prunable: (db: string, configId: string, floor: number, limit: number): Term =>
    r
      .db(db)
      .table(VERSIONS)
      .between(versionId(configId, 0), versionId(configId, floor))
      .orderBy({ index: 'id' })
      .limit(limit)
      .pluck('id', 'version', 'author', 'created_at', 'schema_version', 'schema_json', 'request_key', 'request_fp')
      .coerceTo('array'),
  archiveSchemas: (db: string, docs: SchemaArchiveDoc[]): Term =>
    r.db(db).table(SCHEMA_ARCHIVE).insert(docs, { conflict: 'replace' }),
  archiveRequests: (db: string, docs: RequestDoc[]): Term =>
    r.db(db).table(REQUESTS).insert(docs, { conflict: 'replace' }),
  deleteVersions: (db: string, ids: string[]): Term => r.db(db).table(VERSIONS).getAll(r.args(ids)).delete(),
  archivedSchemas: (db: string, ids: string[]): Term =>
    r.db(db).table(SCHEMA_ARCHIVE).getAll(r.args(ids)).coerceTo('array'),
  /** One feed for the whole table: which config reached which version. */
  versionFeed: (db: string): Term =>
    r
      .db(db)
      .table(VERSIONS)
      .changes({ squash: false })
      .pluck({ new_val: ['user_id', 'config_name', 'version'] }),

  token: (db: string, id: string): Term => r.db(db).table(TOKENS).get(id),
  tokensBySecretHash: (db: string, secretHash: string): Term =>
    r.db(db).table(TOKENS).getAll(secretHash, { index: TOKENS_BY_SECRET_HASH }).coerceTo('array'),
  tokens: (db: string): Term => r.db(db).table(TOKENS).orderBy('created_at', 'id').coerceTo('array'),
  /** Creates a token; the primary key makes exactly one of two inserts of an id win. */
  insertToken: (db: string, doc: StoredTokenRow): Term => r.db(db).table(TOKENS).insert(doc, { conflict: 'error' }),
  /** Stores a token whole, replacing the one with its id. */
  putToken: (db: string, doc: StoredTokenRow): Term => r.db(db).table(TOKENS).insert(doc, { conflict: 'replace' }),
  /**
   * Revokes a token unless it is revoked already, in one atomic update of its document (the branch
   * reads the stored revocation), returning the document as stored whether it changed or not.
   */
  revokeToken: (db: string, id: string, at: number, by: string): Term =>
    r
      .db(db)
      .table(TOKENS)
      .get(id)
      .update(
        (row: any) => r.branch(row('revoked_at').default(null).eq(null), { revoked_at: at, revoked_by: by }, {}),
        { returnChanges: 'always' },
      ),
  binding: (db: string, id: string): Term => r.db(db).table(BINDINGS).get(id),
  bindings: (db: string): Term => r.db(db).table(BINDINGS).orderBy('principal').coerceTo('array'),
  putBinding: (db: string, doc: BindingDoc): Term => r.db(db).table(BINDINGS).insert(doc, { conflict: 'replace' }),
  deleteBinding: (db: string, id: string): Term => r.db(db).table(BINDINGS).get(id).delete(),
  /** Stores a report whole, replacing the one of its config and instance (the same primary key). */
  putReport: (db: string, doc: ReportDoc): Term =>
    r.db(db).table(INSTANCE_REPORTS).insert(doc, { conflict: 'replace' }),
  /**
   * Up to `limit` reports of a config received at or after `since` (epoch ms), ordered by instance
   * id: a range of `REPORTS_BY_INSTANCE` read in index order, stopping once `limit` pass the filter.
   */
  reports: (db: string, configId: string, since: number, limit: number): Term =>
    r
      .db(db)
      .table(INSTANCE_REPORTS)
      .between([configId, r.minval], [configId, r.maxval], { index: REPORTS_BY_INSTANCE })
      .orderBy({ index: REPORTS_BY_INSTANCE })
      .filter((doc: any) => doc('reported_at').ge(since))
      .limit(limit)
      .coerceTo('array'),
  /** Removes every report received before `before` (epoch ms), of every config: a range of `REPORTS_BY_TIME`. */
  expireReports: (db: string, before: number): Term =>
    r.db(db).table(INSTANCE_REPORTS).between(r.minval, before, { index: REPORTS_BY_TIME }).delete(),
  /** A wake-up feed of a credential table: every row means "something changed" (or was lost). */
  credentialFeed: (db: string, table: typeof TOKENS | typeof BINDINGS): Term =>
    r.db(db).table(table).changes({ squash: false }),
};
