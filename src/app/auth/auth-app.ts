import {
  CfgdError,
  EVERY_CONFIG,
  invalidField,
  validateGrants,
  validateName,
  type BindingRecord,
  type Grant,
  type TokenRecord,
} from '../../domain/index.js';
import type { CredentialStore } from '../../store/credential-store.js';
import type { Authorizer, Principal, RequestContext } from '../context.js';
import type { CredentialRegistry } from './registry.js';
import { hashSecret, newTokenId, newTokenSecret } from './secrets.js';

export interface AuthAppDeps {
  readonly credentials: CredentialStore;
  /** Undefined with authentication off: tokens and bindings are still managed, nothing checks them. */
  readonly registry: CredentialRegistry | undefined;
  readonly authorizer: Authorizer;
  readonly clock: () => Date;
}

export interface CreateTokenInput {
  readonly name: string;
  readonly grants: readonly { readonly verb: unknown; readonly resource: unknown }[];
  readonly expireTime?: Date | undefined;
  /** Lifetime from now, in milliseconds. */
  readonly ttlMs?: number | undefined;
}

export interface WhoAmIResult {
  readonly principal: Principal;
  readonly tokenId: string | undefined;
}

/** Longest a binding's principal name may be. */
const MAX_PRINCIPAL_LENGTH = 1024;

/**
 * The use cases of the AuthService: tokens and bindings. Every one but
 * `whoAmI` needs `admin` on every config, checked before anything is read.
 * After a change, this node's registry is reloaded before the call returns,
 * so the next call here (and this node's open streams) see it at once; other
 * nodes follow through the store's change feed.
 */
export class AuthApp {
  constructor(private readonly deps: AuthAppDeps) {}

  async createToken(ctx: RequestContext, input: CreateTokenInput): Promise<{ token: TokenRecord; secret: string }> {
    this.requireAdmin(ctx);
    const name = validateName('name', input.name);
    const grants = validateGrants('grants', input.grants);
    const now = this.deps.clock();
    const expiresAt = tokenExpiry(input, now);
    const secret = newTokenSecret();
    const token: TokenRecord = {
      id: newTokenId(),
      name,
      secretHash: hashSecret(secret),
      grants,
      createdAt: now,
      createdBy: ctx.principal.id,
      expiresAt,
    };
    await this.deps.credentials.createToken(token);
    await this.deps.registry?.reload();
    return { token, secret };
  }

  async listTokens(ctx: RequestContext): Promise<TokenRecord[]> {
    this.requireAdmin(ctx);
    return this.deps.credentials.listTokens();
  }

  async revokeToken(ctx: RequestContext, id: string): Promise<TokenRecord> {
    this.requireAdmin(ctx);
    const tokenId = requireText('id', id);
    const revoked = await this.deps.credentials.revokeToken(tokenId, this.deps.clock(), ctx.principal.id);
    if (revoked === undefined) {
      throw new CfgdError('not-found', 'TOKEN_NOT_FOUND', `no token has the id ${JSON.stringify(tokenId)}`, {
        metadata: { token_id: tokenId },
      });
    }
    await this.deps.registry?.reload();
    return revoked;
  }

  async setBinding(
    ctx: RequestContext,
    principal: string,
    grants: readonly { readonly verb: unknown; readonly resource: unknown }[],
  ): Promise<BindingRecord> {
    this.requireAdmin(ctx);
    const binding: BindingRecord = {
      principal: validatePrincipal(principal),
      grants: validateGrants('grants', grants),
      updatedAt: this.deps.clock(),
      updatedBy: ctx.principal.id,
    };
    await this.deps.credentials.setBinding(binding);
    await this.deps.registry?.reload();
    return binding;
  }

  async listBindings(ctx: RequestContext): Promise<BindingRecord[]> {
    this.requireAdmin(ctx);
    return this.deps.credentials.listBindings();
  }

  async removeBinding(ctx: RequestContext, principal: string): Promise<void> {
    this.requireAdmin(ctx);
    const name = validatePrincipal(principal);
    if (!(await this.deps.credentials.removeBinding(name))) {
      throw new CfgdError('not-found', 'BINDING_NOT_FOUND', `${name} has no binding`, {
        metadata: { principal: name },
      });
    }
    await this.deps.registry?.reload();
  }

  /** The caller as authentication established it; needs no grant. */
  whoAmI(ctx: RequestContext): WhoAmIResult {
    const { principal } = ctx;
    return { principal, tokenId: principal.source.kind === 'token' ? principal.source.tokenId : undefined };
  }

  private requireAdmin(ctx: RequestContext): void {
    this.deps.authorizer.authorize(ctx.principal, 'admin', EVERY_CONFIG);
  }
}

/** The grants a new token may carry; exported for the bootstrap token. */
export const ADMIN_GRANTS: readonly Grant[] = Object.freeze([{ verb: 'admin', resource: EVERY_CONFIG }]);

function tokenExpiry(input: CreateTokenInput, now: Date): Date | undefined {
  if (input.expireTime !== undefined && input.ttlMs !== undefined) {
    throw invalidField('ttl', 'EXPIRY_INVALID', 'give either expire_time or ttl, not both');
  }
  if (input.ttlMs !== undefined) {
    if (!Number.isFinite(input.ttlMs) || input.ttlMs <= 0) {
      throw invalidField('ttl', 'EXPIRY_INVALID', 'must be a positive duration');
    }
    return new Date(now.getTime() + input.ttlMs);
  }
  if (input.expireTime !== undefined) {
    if (!(input.expireTime.getTime() > now.getTime())) {
      throw invalidField(
        'expire_time',
        'EXPIRY_INVALID',
        `must be in the future, got ${input.expireTime.toISOString()}`,
      );
    }
    return input.expireTime;
  }
  return undefined;
}

function validatePrincipal(principal: string): string {
  if (!/^(cert|jwt):./s.test(principal) || principal.length > MAX_PRINCIPAL_LENGTH) {
    throw invalidField(
      'principal',
      'PRINCIPAL_INVALID',
      `must be cert:<subject> or jwt:<sub>, at most ${MAX_PRINCIPAL_LENGTH} characters`,
    );
  }
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(principal)) {
    throw invalidField('principal', 'PRINCIPAL_INVALID', 'must not contain control characters');
  }
  return principal;
}

function requireText(field: string, value: string): string {
  if (value === '') throw invalidField(field, 'NAME_REQUIRED', 'is required');
  if (value.length > 128) throw invalidField(field, 'NAME_TOO_LONG', 'must be at most 128 characters');
  return value;
}
