import type BetterSqlite3 from 'better-sqlite3';
import { CfgdError, type BindingRecord, type TokenRecord } from '../../domain/index.js';
import type { CredentialStore } from '../credential-store.js';
import type { Unsubscribe } from '../store.js';
import {
  toBindingRecord,
  toStoredBinding,
  toStoredToken,
  toTokenRecord,
  type StoredBindingRow,
  type StoredTokenRow,
} from '../stored-credentials.js';

/**
 * The credential tables, created beside the config tables (see `EmbeddedStore`).
 * Rows are the shared `StoredTokenRow` and `StoredBindingRow` (see `stored-credentials.ts`):
 * times in epoch ms, as in `config_versions`; grants JSON text, as values are.
 * `secret_hash` is UNIQUE, so SQLite itself refuses a second token with one secret.
 */
export const CREDENTIAL_SCHEMA = `
CREATE TABLE IF NOT EXISTS tokens (
  id          TEXT NOT NULL PRIMARY KEY,
  secret_hash TEXT NOT NULL UNIQUE,
  name        TEXT NOT NULL,
  grants_json TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  created_by  TEXT NOT NULL,
  expires_at  INTEGER,
  revoked_at  INTEGER,
  revoked_by  TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bindings (
  principal   TEXT NOT NULL PRIMARY KEY,
  grants_json TEXT NOT NULL,
  updated_at  INTEGER NOT NULL,
  updated_by  TEXT NOT NULL
) WITHOUT ROWID;
`;

const TOKEN_COLUMNS = 'id, secret_hash, name, grants_json, created_at, created_by, expires_at, revoked_at, revoked_by';
const TOKEN_VALUES =
  '@id, @secret_hash, @name, @grants_json, @created_at, @created_by, @expires_at, @revoked_at, @revoked_by';

/**
 * `CredentialStore` on the embedded store's SQLite database. Each method is
 * one statement or one transaction, run to completion on the event loop, so
 * a listener called after it sees the change (listeners are this process's
 * only: the database file belongs to one process).
 */
export class EmbeddedCredentials implements CredentialStore {
  private readonly listeners = new Set<{ readonly changed: () => void }>();
  private readonly stmts;

  constructor(private readonly db: BetterSqlite3.Database) {
    this.stmts = {
      insertToken: db.prepare<[StoredTokenRow]>(`INSERT INTO tokens (${TOKEN_COLUMNS}) VALUES (${TOKEN_VALUES})`),
      // An upsert on the id only: a clash of secret_hash with another token still fails (INSERT OR
      // REPLACE would silently delete that other token instead).
      putToken: db.prepare<[StoredTokenRow]>(
        `INSERT INTO tokens (${TOKEN_COLUMNS}) VALUES (${TOKEN_VALUES})
         ON CONFLICT (id) DO UPDATE SET secret_hash = excluded.secret_hash, name = excluded.name,
           grants_json = excluded.grants_json, created_at = excluded.created_at, created_by = excluded.created_by,
           expires_at = excluded.expires_at, revoked_at = excluded.revoked_at, revoked_by = excluded.revoked_by`,
      ),
      revokeToken: db.prepare<[number, string, string]>(
        'UPDATE tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND revoked_at IS NULL',
      ),
      token: db.prepare<[string], StoredTokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE id = ?`),
      tokenBySecretHash: db.prepare<[string], StoredTokenRow>(
        `SELECT ${TOKEN_COLUMNS} FROM tokens WHERE secret_hash = ?`,
      ),
      listTokens: db.prepare<[], StoredTokenRow>(`SELECT ${TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id`),
      setBinding: db.prepare<[StoredBindingRow]>(
        `INSERT INTO bindings (principal, grants_json, updated_at, updated_by)
         VALUES (@principal, @grants_json, @updated_at, @updated_by)
         ON CONFLICT (principal) DO UPDATE SET grants_json = excluded.grants_json,
           updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      ),
      removeBinding: db.prepare<[string]>('DELETE FROM bindings WHERE principal = ?'),
      binding: db.prepare<[string], StoredBindingRow>(
        'SELECT principal, grants_json, updated_at, updated_by FROM bindings WHERE principal = ?',
      ),
      listBindings: db.prepare<[], StoredBindingRow>(
        'SELECT principal, grants_json, updated_at, updated_by FROM bindings ORDER BY principal',
      ),
    };
  }

  async createToken(token: TokenRecord): Promise<void> {
    try {
      this.stmts.insertToken.run(toStoredToken(token));
    } catch (error: unknown) {
      // One statement: when either key is taken, SQLite has written nothing.
      if (isKeyConflict(error)) throw tokenExists(token.id, error);
      throw error;
    }
    this.notify();
  }

  async putToken(token: TokenRecord): Promise<void> {
    try {
      this.stmts.putToken.run(toStoredToken(token));
    } catch (error: unknown) {
      // Only the secret hash can clash here: another token has this secret.
      if (isKeyConflict(error)) throw tokenExists(token.id, error);
      throw error;
    }
    this.notify();
  }

  async revokeToken(id: string, at: Date, by: string): Promise<TokenRecord | undefined> {
    const { changed, row } = this.db
      .transaction(() => ({
        changed: this.stmts.revokeToken.run(at.getTime(), by, id).changes > 0,
        row: this.stmts.token.get(id),
      }))
      .immediate();
    if (changed) this.notify();
    return row && toTokenRecord(row);
  }

  async token(id: string): Promise<TokenRecord | undefined> {
    const row = this.stmts.token.get(id);
    return row && toTokenRecord(row);
  }

  async tokenBySecretHash(secretHash: string): Promise<TokenRecord | undefined> {
    const row = this.stmts.tokenBySecretHash.get(secretHash);
    return row && toTokenRecord(row);
  }

  async listTokens(): Promise<TokenRecord[]> {
    return this.stmts.listTokens.all().map(toTokenRecord);
  }

  async setBinding(binding: BindingRecord): Promise<void> {
    this.stmts.setBinding.run(toStoredBinding(binding));
    this.notify();
  }

  async removeBinding(principal: string): Promise<boolean> {
    const removed = this.stmts.removeBinding.run(principal).changes > 0;
    if (removed) this.notify();
    return removed;
  }

  async binding(principal: string): Promise<BindingRecord | undefined> {
    const row = this.stmts.binding.get(principal);
    return row && toBindingRecord(row);
  }

  async listBindings(): Promise<BindingRecord[]> {
    return this.stmts.listBindings.all().map(toBindingRecord);
  }

  async subscribeCredentials(changed: () => void): Promise<Unsubscribe> {
    // Changes notify synchronously after they commit, so a listener is live at once.
    const listener = { changed };
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Drops every listener; the owner closes the database. */
  close(): void {
    this.listeners.clear();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener.changed();
      } catch {
        // A notification is a hint; a failing listener must not fail a committed change.
      }
    }
  }
}

/** A clash on the tokens' primary key or on their UNIQUE secret hash. */
function isKeyConflict(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

function tokenExists(id: string, cause: unknown): CfgdError {
  return new CfgdError('already-exists', 'TOKEN_EXISTS', `a token with id ${id} or with its secret exists already`, {
    cause,
  });
}
