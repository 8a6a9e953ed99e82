import {
  configUuid,
  type AuditEntry,
  type ConfigKey,
  type ConfigSchema,
  type ConfigVersion,
} from '../../domain/index.js';
import { FIRST_VERSION } from '../store.js';
import { toAuditEntry, toConfigSchema, toConfigVersion } from '../stored-row.js';
import type { RethinkConnection } from './connection.js';
import { q, schemaArchiveId, versionId, type HeadDoc, type SchemaArchiveDoc, type VersionDoc } from './queries.js';

/** How many versions one read looks ahead of the head. */
const PROBE = 8;
/** The longest run of versions one read asks for while paging. */
const MAX_CHUNK = 256;
/** Schema versions kept in memory per process (each is immutable once committed). */
const SCHEMA_CACHE_SIZE = 1024;

/**
 * The read side of the RethinkDB backend. Every read is by primary key
 * (`versionId`), which costs the same however long a history is (on reqlite
 * too, where secondary indexes scan the whole table). That works because the
 * store's history is contiguous (see `ConfigStore`): from the first kept
 * version to the latest every key exists, so a run of point reads that finds
 * a missing key has reached the end of the history. Reads start at the first
 * kept version, never at a fixed number.
 */
export class Readers {
  /** Committed schema versions by `configId:schemaVersion`, least recently used first. */
  private readonly schemaCache = new Map<string, ConfigSchema>();

  constructor(
    private readonly connection: RethinkConnection,
    private readonly db: string,
  ) {}

  /**
   * The config's first kept version (see `ConfigStore.firstKeptVersion`): the
   * floor pruning records on the head document (which every node reads)
   * before it removes anything, so a reader that starts there finds every
   * version from it to the latest.
   */
  async firstKept(configId: string): Promise<number> {
    const head = await this.connection.run<HeadDoc | null>(q.head(this.db, configId), 'read the head');
    return head?.first_kept ?? FIRST_VERSION;
  }

  /** The head, for retention: its floor and the config's own limit; undefined for a config never written. */
  async head(configId: string): Promise<HeadDoc | undefined> {
    return (await this.connection.run<HeadDoc | null>(q.head(this.db, configId), 'read the head')) ?? undefined;
  }

  /**
   * The latest version, or undefined when the config has none: start at the
   * head (a hint that may lag a commit) and look ahead until a version is missing.
   */
  async latest(key: ConfigKey): Promise<ConfigVersion | undefined> {
    const configId = configUuid(key);
    const head = await this.connection.run<HeadDoc | null>(q.head(this.db, configId), 'read the head');
    return this.latestFrom(key, configId, head?.version ?? 0, head?.first_kept ?? FIRST_VERSION);
  }

  /**
   * The latest version, looking ahead from `from` (a head's version; 0 when the
   * config has no head, and then from the first kept version). Throws when a
   * head points at a version that is not there: the head is only ever rolled
   * forward to committed versions, so that is corruption, not a race.
   */
  private async latestFrom(
    key: ConfigKey,
    configId: string,
    from: number,
    firstKept: number,
  ): Promise<ConfigVersion | undefined> {
    let latest: VersionDoc | undefined;
    // One read covers the head's version and the look-ahead; usually it finds the head alone.
    for (let next = Math.max(from, firstKept); ;) {
      const found = await this.run(configId, next, PROBE);
      if (from > 0 && latest === undefined && found.length === 0) {
        throw new Error(`the head of ${configId} points at missing version ${from}`);
      }
      if (found.length > 0) latest = found.at(-1);
      if (found.length < PROBE) return latest && toConfigVersion(key, latest);
      next += found.length;
    }
  }

  /** Up to `count` consecutive versions from `from`, stopping at the first missing one. */
  private async run(configId: string, from: number, count: number): Promise<VersionDoc[]> {
    const ids = Array.from({ length: count }, (_, i) => versionId(configId, from + i));
    const docs = await this.connection.run<(VersionDoc | null)[]>(q.versionsById(this.db, ids), 'read versions');
    const gap = docs.indexOf(null);
    return (gap === -1 ? docs : docs.slice(0, gap)) as VersionDoc[];
  }

  /** One version; undefined below the first kept version (whatever documents remain) and where none is stored. */
  async version(key: ConfigKey, version: number): Promise<ConfigVersion | undefined> {
    const configId = configUuid(key);
    if (version < (await this.firstKept(configId))) return undefined;
    const doc = await this.connection.run<VersionDoc | null>(
      q.version(this.db, versionId(configId, version)),
      'read a version',
    );
    return doc === null ? undefined : toConfigVersion(key, doc);
  }

  /** Up to `limit` consecutive versions from `max(after + 1, first kept)`, reading runs of growing length. */
  async versionsAfter(key: ConfigKey, after: number, limit: number): Promise<ConfigVersion[]> {
    const configId = configUuid(key);
    const first = Math.max(after + 1, await this.firstKept(configId));
    const result: ConfigVersion[] = [];
    // A run that ends early has reached the latest version (the history has no gaps).
    for (let chunk = PROBE; result.length < limit; chunk = Math.min(chunk * 2, MAX_CHUNK)) {
      const count = Math.min(chunk, limit - result.length);
      const docs = await this.run(configId, first + result.length, count);
      result.push(...docs.map((doc) => toConfigVersion(key, doc)));
      if (docs.length < count) break;
    }
    return result;
  }

  /** Up to `limit` consecutive audit entries from `max(from, first kept)`, without reading the values. */
  async auditEntries(key: ConfigKey, from: number, limit: number): Promise<AuditEntry[]> {
    const configId = configUuid(key);
    const first = Math.max(from, await this.firstKept(configId));
    const result: AuditEntry[] = [];
    for (let chunk = PROBE; result.length < limit; chunk = Math.min(chunk * 2, MAX_CHUNK)) {
      const count = Math.min(chunk, limit - result.length);
      const ids = Array.from({ length: count }, (_, i) => versionId(configId, first + result.length + i));
      const docs = await this.connection.run<Omit<VersionDoc, 'values_json'>[]>(
        q.auditById(this.db, ids),
        'read history',
      );
      // Missing versions are filtered out; the history has no gaps, so the run ends at the first one.
      const run = docs.filter((doc, i) => doc.version === first + result.length + i);
      result.push(...run.map(toAuditEntry));
      if (run.length < count) break;
    }
    return result;
  }

  /**
   * One schema version: from the version that set it, found through the
   * `schema_key` index. A committed schema version never changes, so it is
   * cached; the write path learns which one is current from the latest
   * version it reads, never from the cache.
   */
  async schema(key: ConfigKey, schemaVersion: number): Promise<ConfigSchema | undefined> {
    if (schemaVersion === 0) return undefined;
    const configId = configUuid(key);
    const id = `${configId}:${schemaVersion}`;
    const cached = this.schemaCache.get(id);
    if (cached !== undefined) {
      this.schemaCache.delete(id);
      this.schemaCache.set(id, cached);
      return cached;
    }
    const [found] = await this.schemaRun(configId, [schemaVersion]);
    if (found !== undefined) this.remember(id, found);
    return found;
  }

  /** Up to `limit` consecutive schema versions from `from` (at least 1), stopping at the first missing one. */
  async schemas(key: ConfigKey, from: number, limit: number): Promise<ConfigSchema[]> {
    const configId = configUuid(key);
    const first = Math.max(from, 1);
    const result: ConfigSchema[] = [];
    for (let chunk = PROBE; result.length < limit; chunk = Math.min(chunk * 2, MAX_CHUNK)) {
      const count = Math.min(chunk, limit - result.length);
      const wanted = Array.from({ length: count }, (_, i) => first + result.length + i);
      const found = await this.schemaRun(configId, wanted);
      result.push(...found);
      if (found.length < count) break;
    }
    return result;
  }

  /**
   * The schema versions `wanted` (ascending, consecutive) up to the first that is missing: from the
   * versions that set them, or, for versions pruned since, from the archive pruning keeps them in.
   */
  private async schemaRun(configId: string, wanted: number[]): Promise<ConfigSchema[]> {
    const docs = await this.connection.run<VersionDoc[]>(
      q.schemaVersions(this.db, configId, wanted),
      'read schema versions',
    );
    const bySchemaVersion = new Map<
      number | undefined,
      Pick<VersionDoc, 'version' | 'schema_json' | 'author' | 'created_at'>
    >(docs.map((doc) => [doc.schema_version, doc]));
    const missing = wanted.filter((schemaVersion) => !bySchemaVersion.has(schemaVersion));
    if (missing.length > 0) {
      const archived = await this.connection.run<SchemaArchiveDoc[]>(
        q.archivedSchemas(
          this.db,
          missing.map((schemaVersion) => schemaArchiveId(configId, schemaVersion)),
        ),
        'read archived schemas',
      );
      for (const doc of archived) bySchemaVersion.set(doc.schema_version, doc);
    }
    const run: ConfigSchema[] = [];
    for (const schemaVersion of wanted) {
      const doc = bySchemaVersion.get(schemaVersion);
      if (doc?.schema_json === undefined) break;
      run.push(
        toConfigSchema({
          schema_version: schemaVersion,
          version: doc.version,
          schema_json: doc.schema_json,
          author: doc.author,
          created_at: doc.created_at,
        }),
      );
    }
    return run;
  }

  private remember(id: string, schema: ConfigSchema): void {
    this.schemaCache.set(id, schema);
    if (this.schemaCache.size > SCHEMA_CACHE_SIZE) {
      const oldest = this.schemaCache.keys().next();
      if (oldest.done !== true) this.schemaCache.delete(oldest.value);
    }
  }

  /** The latest version of every config of a user that has a head, ordered by config name. */
  async listLatest(userId: string): Promise<ConfigVersion[]> {
    const heads = await this.connection.run<HeadDoc[]>(q.headsOfUser(this.db, userId), 'list configs');
    // Heads are hints that may lag a commit; each read looks ahead from its head like `latest`.
    const latest = await Promise.all(
      heads.map((head) =>
        this.latestFrom(
          { userId, configName: head.config_name },
          head.id,
          head.version,
          head.first_kept ?? FIRST_VERSION,
        ),
      ),
    );
    return latest
      .filter((version): version is ConfigVersion => version !== undefined)
      .sort((a, b) => (a.key.configName < b.key.configName ? -1 : a.key.configName > b.key.configName ? 1 : 0));
  }
}
