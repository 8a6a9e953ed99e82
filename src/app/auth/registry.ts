import type { Logger } from 'pino';
import type { BindingRecord, TokenRecord } from '../../domain/index.js';
import type { CredentialStore } from '../../store/credential-store.js';
import { hashSecret } from './secrets.js';

/** Most store lookups of unknown secrets at once; more are refused without a lookup. */
const MAX_MISS_LOOKUPS = 8;

/**
 * This node's copy of the tokens and bindings, kept in memory so that
 * checking a credential never costs a query. It reloads
 * whole after every change the store reports (on any node) and tells its
 * listeners, so revocations reach open streams; the tables are an operator's
 * tokens, small enough to reload.
 *
 * A secret this node has not seen is looked up in the store before it is
 * refused: a token created through another node a moment ago works here even
 * before the change reaches this node's feed.
 */
export class CredentialRegistry {
  private byHash = new Map<string, TokenRecord>();
  private byId = new Map<string, TokenRecord>();
  private bindings = new Map<string, BindingRecord>();
  private readonly listeners = new Set<() => void>();
  private missLookups = 0;
  private reloading: Promise<void> | undefined;
  private again = false;
  private unsubscribe: (() => void) | undefined;
  private closed = false;

  private constructor(
    private readonly store: CredentialStore,
    private readonly log: Logger,
  ) {}

  /** Loads every token and binding and follows the store's changes. */
  static async open(store: CredentialStore, log: Logger): Promise<CredentialRegistry> {
    const registry = new CredentialRegistry(store, log);
    registry.unsubscribe = await store.subscribeCredentials(() => {
      registry.reload().catch((error: unknown) => {
        // The next change, or the feed's recovery, reloads again; meanwhile the old copy stands.
        log.warn({ err: error }, 'could not reload tokens and bindings');
      });
    });
    await registry.reload();
    return registry;
  }

  /**
   * Reads every token and binding again, then tells the listeners. Calls made
   * while a reload runs share one more reload after it, so the copy is never
   * older than the last call.
   */
  reload(): Promise<void> {
    if (this.reloading !== undefined) {
      this.again = true;
      return this.reloading;
    }
    const run = async (): Promise<void> => {
      do {
        this.again = false;
        const [tokens, bindings] = await Promise.all([this.store.listTokens(), this.store.listBindings()]);
        this.byHash = new Map(tokens.map((token) => [token.secretHash, token]));
        this.byId = new Map(tokens.map((token) => [token.id, token]));
        this.bindings = new Map(bindings.map((binding) => [binding.principal, binding]));
      } while (this.again && !this.closed);
    };
    this.reloading = run().finally(() => {
      this.reloading = undefined;
    });
    return this.reloading.then(() => this.notify());
  }

  /**
   * The token a secret belongs to, revoked or not, from memory only. Hashes
   * the secret: callers remember what they resolved (the authenticator keeps
   * principals by header), so this runs once per credential per change.
   */
  tokenForSecret(secret: string): TokenRecord | undefined {
    return this.byHash.get(hashSecret(secret));
  }

  /**
   * The token a secret belongs to, asking the store when this node does not
   * know it (yet). Undefined for a secret no token has.
   */
  async lookUpSecret(secret: string): Promise<TokenRecord | undefined> {
    const known = this.tokenForSecret(secret);
    if (known !== undefined || this.missLookups >= MAX_MISS_LOOKUPS) return known;
    this.missLookups++;
    try {
      const found = await this.store.tokenBySecretHash(hashSecret(secret));
      if (found !== undefined && !this.byId.has(found.id)) {
        this.byId.set(found.id, found);
        this.byHash.set(found.secretHash, found);
      }
      return found;
    } finally {
      this.missLookups--;
    }
  }

  /** The token with this id as this node last loaded it. */
  token(id: string): TokenRecord | undefined {
    return this.byId.get(id);
  }

  /** The binding of a principal name as this node last loaded it. */
  binding(principal: string): BindingRecord | undefined {
    return this.bindings.get(principal);
  }

  /** Calls `listener` after every reload; returns its removal. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    this.unsubscribe?.();
    this.listeners.clear();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (error: unknown) {
        this.log.error({ err: error }, 'a credential change listener failed');
      }
    }
  }
}
