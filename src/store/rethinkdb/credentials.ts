import { CfgdError, type BindingRecord, type TokenRecord } from '../../domain/index.js';
import type { CredentialStore } from '../credential-store.js';
import type { Unsubscribe } from '../store.js';
import {
  toBindingRecord,
  toStoredBinding,
  toStoredToken,
  toTokenRecord,
  type StoredTokenRow,
} from '../stored-credentials.js';
import type { RethinkConnection } from './connection.js';
import type { CredentialFeed } from './credential-feed.js';
import { bindingId, q, type BindingDoc, type ChangesResult, type WriteResult } from './queries.js';

export interface RethinkDbCredentialsOptions {
  readonly connection: RethinkConnection;
  readonly db: string;
  /** The store's credential feed, shared by every listener. */
  readonly feed: CredentialFeed;
}

/**
 * `CredentialStore` on the cluster backend: tokens in `cfgd_tokens` (primary
 * key the token id, a secondary index on the secret hash), bindings in
 * `cfgd_bindings` (primary key `bindingId(principal)`), both as the rows
 * the embedded store keeps (see `stored-credentials.ts`): grants as JSON text,
 * times in epoch ms.
 * Each write is one document, so each is atomic; what spans documents (the
 * uniqueness of a secret hash) is checked on a best-effort basis, as said
 * where it is done. Failures of availability are `DatabaseUnavailableError`s
 * from the connection.
 */
export class RethinkDbCredentials implements CredentialStore {
  private readonly connection: RethinkConnection;
  private readonly db: string;
  private readonly feed: CredentialFeed;

  constructor(options: RethinkDbCredentialsOptions) {
    this.connection = options.connection;
    this.db = options.db;
    this.feed = options.feed;
  }

  /**
   * The id's uniqueness is the primary key's: of two inserts of one id
   * exactly one wins. A secret hash's is checked before the insert and so is
   * best effort: RethinkDB has no unique secondary index, and two creations
   * with one secret racing each other can both pass the check. Secrets are
   * 256-bit random or long operator-chosen strings, so such a race needs an
   * operator to create one secret twice at once; `tokenBySecretHash` answers
   * deterministically even then.
   */
  async createToken(token: TokenRecord): Promise<void> {
    const doc = toStoredToken(token);
    await this.checkSecretHashFree(doc);
    const result = await this.connection.run<WriteResult>(q.insertToken(this.db, doc), 'create a token');
    if (result.inserted === 1) return;
    if (isDuplicateKey(result)) throw tokenExists(token.id);
    throw writeFailed('creating a token', result);
  }

  /** Replaces the token with this id whole; refuses (best effort, as `createToken`) another token's secret. */
  async putToken(token: TokenRecord): Promise<void> {
    const doc = toStoredToken(token);
    await this.checkSecretHashFree(doc);
    const result = await this.connection.run<WriteResult>(q.putToken(this.db, doc), 'store a token');
    if ((result.errors ?? 0) > 0) throw writeFailed('storing a token', result);
  }

  async revokeToken(id: string, at: Date, by: string): Promise<TokenRecord | undefined> {
    const result = await this.connection.run<ChangesResult<StoredTokenRow>>(
      q.revokeToken(this.db, id, at.getTime(), by),
      'revoke a token',
    );
    if ((result.errors ?? 0) > 0) throw writeFailed('revoking a token', result);
    if ((result.skipped ?? 0) > 0) return undefined;
    const stored = result.changes?.[0]?.new_val;
    // `returnChanges: 'always'` reports an unchanged document too; a server that leaves it out is
    // answered by a read, which is as good: a revocation, once stored, is never undone by this method.
    if (stored === undefined) return this.token(id);
    return stored === null ? undefined : toTokenRecord(stored);
  }

  async token(id: string): Promise<TokenRecord | undefined> {
    const doc = await this.connection.run<StoredTokenRow | null>(q.token(this.db, id), 'read a token');
    return doc === null ? undefined : toTokenRecord(doc);
  }

  async tokenBySecretHash(secretHash: string): Promise<TokenRecord | undefined> {
    const docs = await this.connection.run<StoredTokenRow[]>(
      q.tokensBySecretHash(this.db, secretHash),
      'look a token up by its secret',
    );
    // Several only after a lost race of `createToken`: the first created keeps answering.
    const first = docs.sort(byCreation)[0];
    return first === undefined ? undefined : toTokenRecord(first);
  }

  async listTokens(): Promise<TokenRecord[]> {
    const docs = await this.connection.run<StoredTokenRow[]>(q.tokens(this.db), 'list tokens');
    return docs.map(toTokenRecord);
  }

  async setBinding(binding: BindingRecord): Promise<void> {
    const doc: BindingDoc = { id: bindingId(binding.principal), ...toStoredBinding(binding) };
    const result = await this.connection.run<WriteResult>(q.putBinding(this.db, doc), 'store a binding');
    if ((result.errors ?? 0) > 0) throw writeFailed('storing a binding', result);
  }

  async removeBinding(principal: string): Promise<boolean> {
    const result = await this.connection.run<WriteResult>(
      q.deleteBinding(this.db, bindingId(principal)),
      'remove a binding',
    );
    if ((result.errors ?? 0) > 0) throw writeFailed('removing a binding', result);
    return (result.deleted ?? 0) > 0;
  }

  async binding(principal: string): Promise<BindingRecord | undefined> {
    const doc = await this.connection.run<BindingDoc | null>(
      q.binding(this.db, bindingId(principal)),
      'read a binding',
    );
    return doc === null ? undefined : toBindingRecord(doc);
  }

  async listBindings(): Promise<BindingRecord[]> {
    const docs = await this.connection.run<BindingDoc[]>(q.bindings(this.db), 'list bindings');
    return docs.map(toBindingRecord);
  }

  /** Listeners are called by the store's credential feed, also for this node's own changes. */
  subscribeCredentials(changed: () => void): Promise<Unsubscribe> {
    return this.feed.subscribe(changed);
  }

  /** TOKEN_EXISTS when another token has this secret (best effort: see `createToken`). */
  private async checkSecretHashFree(doc: StoredTokenRow): Promise<void> {
    const holders = await this.connection.run<StoredTokenRow[]>(
      q.tokensBySecretHash(this.db, doc.secret_hash),
      'look a token up by its secret',
    );
    if (holders.some((holder) => holder.id !== doc.id)) throw tokenExists(doc.id);
  }
}

/** Creation time, then id: the order of `listTokens`. */
function byCreation(a: StoredTokenRow, b: StoredTokenRow): number {
  return a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function isDuplicateKey(result: WriteResult): boolean {
  return (result.errors ?? 0) > 0 && /Duplicate primary key/i.test(result.first_error ?? '');
}

/** A write the server refused for a reason other than availability: a bug, logged as INTERNAL. */
export function writeFailed(what: string, result: WriteResult): Error {
  return new Error(`${what} failed: ${result.first_error ?? JSON.stringify(result)}`);
}

function tokenExists(id: string): CfgdError {
  return new CfgdError('already-exists', 'TOKEN_EXISTS', `a token with id ${id} or with its secret exists already`);
}
