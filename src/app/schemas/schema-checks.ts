import type { ConfigKey, ConfigSchema, SchemaCheck } from '../../domain/index.js';
import type { CompiledSchema, SchemaCompiler } from '../../schema/json-schema.js';

/** Compiled schemas kept per process; a write to a config whose schema fell out compiles it again. */
export const DEFAULT_SCHEMA_CACHE_SIZE = 1024;

/**
 * The checks of committed schema versions, compiled once per process and
 * shared by every request (compiling a schema costs far more than checking
 * values against it). A committed schema version never changes, so an entry
 * never goes stale; the least recently used ones are dropped past the limit.
 * Which schema version a write must satisfy is never decided here: the store
 * hands each plan the schema of the version it planned against.
 */
export class SchemaChecks {
  private readonly compiled = new Map<string, CompiledSchema>();
  /** The cache key of schema objects seen before (stores hand out the same object for a cached schema). */
  private readonly ids = new WeakMap<ConfigSchema, string>();

  constructor(
    private readonly compiler: SchemaCompiler,
    private readonly size = DEFAULT_SCHEMA_CACHE_SIZE,
  ) {}

  /** The check of a config's committed schema (undefined: none), compiled on first use. */
  of(key: ConfigKey, schema: ConfigSchema | undefined): SchemaCheck | undefined {
    if (schema === undefined) return undefined;
    const id = this.idOf(key, schema);
    let entry = this.compiled.get(id);
    if (entry === undefined) {
      entry = this.compiler.compile(schema.schema);
      this.compiled.set(id, entry);
      if (this.compiled.size > this.size) this.evictOldest();
    } else {
      this.compiled.delete(id);
      this.compiled.set(id, entry);
    }
    const compiled = entry;
    return (values) => compiled.check(values);
  }

  /**
   * A proposed schema (`propose`) that has just been committed as `schema`:
   * kept as that schema version's check, so that the next write does not
   * compile it again. Returns false when the cache had one already (the
   * caller then disposes its own).
   */
  adopt(key: ConfigKey, schema: ConfigSchema, compiled: CompiledSchema): boolean {
    const id = this.idOf(key, schema);
    if (this.compiled.has(id)) return false;
    this.compiled.set(id, compiled);
    if (this.compiled.size > this.size) this.evictOldest();
    return true;
  }

  /** A schema a request proposes: compiled to check it (INVALID_ARGUMENT `SCHEMA_INVALID` if cfgd cannot take it). */
  propose(schema: unknown): CompiledSchema {
    return this.compiler.compile(schema);
  }

  /** The cache key of a committed schema version: its config, number and commit (version and time). */
  private idOf(key: ConfigKey, schema: ConfigSchema): string {
    let id = this.ids.get(schema);
    if (id === undefined) {
      // The commit identifies the schema version beyond doubt, also across a reset database.
      id = JSON.stringify([
        key.userId,
        key.configName,
        schema.schemaVersion,
        schema.version,
        schema.createdAt.getTime(),
      ]);
      this.ids.set(schema, id);
    }
    return id;
  }

  private evictOldest(): void {
    const oldest = this.compiled.entries().next();
    if (oldest.done === true) return;
    this.compiled.delete(oldest.value[0]);
    oldest.value[1].dispose();
  }
}
