import { CfgdError, type Grant, type TokenRecord } from '../../domain/index.js';
import type { Principal } from '../context.js';
import { looksLikeJwt, type JwtVerifier, type VerifiedJwt } from './jwt.js';
import type { CredentialRegistry } from './registry.js';

/**
 * What a call presents to prove who it is, as the transports read it. The
 * certificate is read only when there is no header (it may be a getter whose
 * reading costs something).
 */
export interface PresentedCredentials {
  /** The `authorization` header (REST) or metadata (gRPC). */
  readonly authorization: string | undefined;
  /** The client certificate the TLS layer verified, if any. */
  readonly clientCertificate: { readonly subject: string; readonly validTo: number } | undefined;
}

export interface AuthenticatorDeps {
  readonly registry: CredentialRegistry;
  /** Verifies JWTs when an issuer is configured. */
  readonly jwt?: JwtVerifier | undefined;
  readonly clock: () => Date;
}

/** Most JWTs remembered as verified before the memory of them starts over. */
const MAX_REMEMBERED_JWTS = 10_000;
/** Most `authorization` headers remembered with their principal before the memory of them starts over. */
const MAX_REMEMBERED_HEADERS = 10_000;

/**
 * Turns what a call presents into a `Principal`, or throws UNAUTHENTICATED
 * saying why. Precedence: the `authorization` header (a cfgd token, or a JWT
 * when an issuer is configured; `Bearer`, or `Basic` with the token as the
 * password), else the verified client certificate. Every kind of identity
 * ends at the same grants: a token's own, or the binding of the principal's
 * name. Nothing here puts a secret in an error or a log.
 */
export class Authenticator {
  private verifiedJwts = new Map<string, VerifiedJwt>();
  /**
   * The principal of each `authorization` header seen, valid until the
   * registry changes (every change clears it) or the credential expires:
   * the common call is one map lookup.
   */
  private byHeader = new Map<string, Principal>();
  /** One principal per stored token, built once. */
  private byToken = new WeakMap<TokenRecord, Principal>();

  /** Counts the registry's changes: a principal resolved across one is not remembered. */
  private generation = 0;

  constructor(private readonly deps: AuthenticatorDeps) {
    deps.registry.onChange(() => {
      this.byHeader = new Map();
      this.generation++;
    });
  }

  /** The principal, from memory when the credential has been seen (no hashing, no query, no signature check). */
  authenticate(presented: PresentedCredentials): Principal | Promise<Principal> {
    const authorization = presented.authorization;
    if (authorization !== undefined) {
      const known = this.byHeader.get(authorization);
      if (known !== undefined && (known.expiresAt === undefined || known.expiresAt > this.now())) return known;
      const principal = this.fromHeader(authorization);
      if (!(principal instanceof Promise)) return this.remember(authorization, principal);
      // Resolved after a wait (a store lookup, a signature check): a revocation or a binding change
      // may have come in between, so this answer serves this call only.
      const generation = this.generation;
      return principal.then((resolved) =>
        generation === this.generation ? this.remember(authorization, resolved) : resolved,
      );
    }
    const certificate = presented.clientCertificate;
    if (certificate !== undefined) {
      return this.fromBinding(`cert:${certificate.subject}`, 'certificate', [], certificate.validTo);
    }
    throw unauthenticated(
      'TOKEN_MISSING',
      'credentials are required: send "authorization: Bearer <token>" (or a client certificate)',
    );
  }

  private remember(authorization: string, principal: Principal): Principal {
    if (this.byHeader.size >= MAX_REMEMBERED_HEADERS) this.byHeader = new Map();
    this.byHeader.set(authorization, principal);
    return principal;
  }

  private now(): number {
    return this.deps.clock().getTime();
  }

  private fromHeader(authorization: string): Principal | Promise<Principal> {
    const secret = bearerSecret(authorization);
    if (this.deps.jwt !== undefined && looksLikeJwt(secret)) return this.fromJwt(this.deps.jwt, secret);
    const known = this.deps.registry.tokenForSecret(secret);
    if (known !== undefined) return this.fromToken(known);
    return this.deps.registry.lookUpSecret(secret).then((token) => {
      if (token === undefined) throw unauthenticated('TOKEN_INVALID', 'the token is not known to cfgd');
      return this.fromToken(token);
    });
  }

  private fromToken(token: TokenRecord): Principal {
    const problem = tokenProblem(token, this.now());
    if (problem !== undefined) throw problem;
    let principal = this.byToken.get(token);
    if (principal === undefined) {
      principal = {
        id: `token:${token.name}`,
        kind: 'token',
        grants: token.grants,
        source: { kind: 'token', tokenId: token.id },
        expiresAt: token.expiresAt?.getTime(),
      };
      this.byToken.set(token, principal);
    }
    return principal;
  }

  private async fromJwt(verifier: JwtVerifier, jwt: string): Promise<Principal> {
    const now = this.deps.clock();
    let verified = this.verifiedJwts.get(jwt);
    if (verified === undefined || (verified.expiresAt !== undefined && verified.expiresAt <= now.getTime())) {
      verified = await verifier.verify(jwt, now);
      if (this.verifiedJwts.size >= MAX_REMEMBERED_JWTS) this.verifiedJwts = new Map();
      this.verifiedJwts.set(jwt, verified);
    }
    return this.fromBinding(`jwt:${verified.subject}`, 'jwt', verified.claimGrants, verified.expiresAt);
  }

  private fromBinding(
    id: string,
    kind: 'certificate' | 'jwt',
    claimGrants: readonly Grant[],
    expiresAt: number | undefined,
  ): Principal {
    const bound = this.deps.registry.binding(id)?.grants ?? [];
    return {
      id,
      kind,
      grants: claimGrants.length === 0 ? bound : [...bound, ...claimGrants],
      source: { kind: 'binding', claimGrants },
      expiresAt,
    };
  }
}

/** Why a stored token no longer authenticates anyone, or undefined while it does. */
export function tokenProblem(token: TokenRecord, now: number): CfgdError | undefined {
  if (token.revokedAt !== undefined) {
    return unauthenticated('TOKEN_REVOKED', `token ${token.id} ("${token.name}") was revoked`, token.id);
  }
  if (token.expiresAt !== undefined && token.expiresAt.getTime() <= now) {
    return unauthenticated(
      'TOKEN_EXPIRED',
      `token ${token.id} ("${token.name}") expired at ${token.expiresAt.toISOString()}`,
      token.id,
    );
  }
  return undefined;
}

/** The secret of `Bearer <secret>`, or the password of `Basic base64(user:secret)` (curl -u :TOKEN). */
function bearerSecret(header: string): string {
  const match = /^([A-Za-z]+) +(\S+) *$/.exec(header);
  const scheme = match?.[1]?.toLowerCase();
  const credentials = match?.[2];
  if (scheme === 'bearer' && credentials !== undefined) return credentials;
  if (scheme === 'basic' && credentials !== undefined && /^[A-Za-z0-9+/]+={0,2}$/.test(credentials)) {
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const password = colon < 0 ? '' : decoded.slice(colon + 1);
    if (password !== '') return password;
  }
  throw unauthenticated(
    'AUTHORIZATION_MALFORMED',
    'the authorization header must be "Bearer <token>", or "Basic" with the token as the password',
  );
}

function unauthenticated(
  reason: 'TOKEN_MISSING' | 'TOKEN_INVALID' | 'TOKEN_REVOKED' | 'TOKEN_EXPIRED' | 'AUTHORIZATION_MALFORMED',
  message: string,
  tokenId?: string,
): CfgdError {
  return new CfgdError(
    'unauthenticated',
    reason,
    message,
    tokenId === undefined ? {} : { metadata: { token_id: tokenId } },
  );
}
