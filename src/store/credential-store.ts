import type { BindingRecord, TokenRecord } from '../domain/index.js';

/**
 * Where tokens and bindings live: in the same database as the configs, so a
 * token created through one node works on every node of a shared backend.
 * Part of the storage contract (`test/conformance`); every backend keeps it.
 * The tables are small (an operator's tokens), so readers list them whole.
 */
export interface CredentialStore {
  /**
   * Stores a new token. Throws `CfgdError` ALREADY_EXISTS (reason
   * TOKEN_EXISTS) when its id or its secret hash is taken; nothing is written then.
   */
  createToken(token: TokenRecord): Promise<void>;

  /**
   * Stores the token, replacing the one with its id if any (the bootstrap
   * `admin` token). Throws TOKEN_EXISTS, writing nothing, when another token
   * has its secret hash.
   */
  putToken(token: TokenRecord): Promise<void>;

  /**
   * Marks the token revoked at `at` by `by` and returns it as stored; a token
   * revoked before keeps its first revocation. Undefined when no token has this id.
   */
  revokeToken(id: string, at: Date, by: string): Promise<TokenRecord | undefined>;

  /** The token with this id, revoked or not. */
  token(id: string): Promise<TokenRecord | undefined>;

  /** The token whose secret hashes to `secretHash`, revoked or not. */
  tokenBySecretHash(secretHash: string): Promise<TokenRecord | undefined>;

  /** Every token, revoked and expired ones included, ordered by creation time, then id. */
  listTokens(): Promise<TokenRecord[]>;

  /** Stores the binding, replacing the one of its principal if any. */
  setBinding(binding: BindingRecord): Promise<void>;

  /** Removes the binding of `principal`; false when there was none. */
  removeBinding(principal: string): Promise<boolean>;

  /** The binding of one principal. */
  binding(principal: string): Promise<BindingRecord | undefined>;

  /** Every binding, ordered by principal. */
  listBindings(): Promise<BindingRecord[]>;

  /**
   * Calls `changed` after any token or binding changes, on this node or (for
   * shared backends) any other, and also whenever changes may have been
   * missed (a feed lost and regained): a hint to reload, not a record.
   * Resolves once every later change is certain to call it, with the function
   * that stops the calls (idempotent).
   */
  subscribeCredentials(changed: () => void): Promise<() => void>;
}
