import { EVERY_CONFIG, type CfgdError, type Grant, type Verb } from '../domain/index.js';

/**
 * Where a principal's grants come from, so that a long-lived stream can ask
 * again later whether they still hold: a token's own grants, or the binding of
 * the principal's name (plus, for a JWT, the grants its claim carried).
 */
export type GrantSource =
  | { readonly kind: 'everything' }
  | { readonly kind: 'token'; readonly tokenId: string }
  | { readonly kind: 'binding'; readonly claimGrants: readonly Grant[] };

/** Who is making a request, as authentication established it for this call. */
export interface Principal {
  /**
   * The name the audit trail records: `token:{name}`, `cert:{subject}`,
   * `jwt:{sub}`, or `anonymous` when authentication is off. Never a secret.
   */
  readonly id: string;
  readonly kind: 'anonymous' | 'token' | 'certificate' | 'jwt';
  /** The grants in force for this call. */
  readonly grants: readonly Grant[];
  readonly source: GrantSource;
  /** When the credential stops being valid (epoch ms): token expiry, JWT `exp`, certificate end. */
  readonly expiresAt?: number | undefined;
}

/** The caller when authentication is off: anonymous, allowed everything. */
export const ANONYMOUS: Principal = {
  id: 'anonymous',
  kind: 'anonymous',
  grants: [{ verb: 'admin', resource: EVERY_CONFIG }],
  source: { kind: 'everything' },
};

/** What the app layer knows about the request beyond its arguments. */
export interface RequestContext {
  readonly principal: Principal;
  /** Aborted when the client goes away, the deadline passes or the server stops. */
  readonly signal: AbortSignal;
}

/**
 * Decides whether a principal may perform a verb on a resource. Runs before
 * any lookup, so a forbidden caller cannot learn whether a config exists.
 */
export interface Authorizer {
  /** Throws PERMISSION_DENIED unless the principal's grants allow `verb` on `resource`. */
  authorize(principal: Principal, verb: Verb, resource: string): void;
  /**
   * Throws PERMISSION_DENIED unless the principal's grants allow `verb` on at
   * least one config of `userId` (a list is then filtered with `allowed`).
   */
  authorizeSome(principal: Principal, verb: Verb, userId: string): void;
  /** Whether the principal's grants allow `verb` on `resource`, without throwing (to filter a list). */
  allowed(principal: Principal, verb: Verb, resource: string): boolean;
  /**
   * Keeps a stream's access under watch after `authorize` let it open: calls
   * `lost` once, with UNAUTHENTICATED or PERMISSION_DENIED saying why, when
   * the caller's token is revoked or expires or its grants stop allowing
   * `verb` on `resource` (at once, if that already happened since
   * `authorize`). Returns the function that stops watching (idempotent),
   * for when the stream ends.
   */
  guard(principal: Principal, verb: Verb, resource: string, lost: (reason: CfgdError) => void): () => void;
}

/** The policy with authentication off: everything is allowed, for as long as it lasts. */
export const allowAll: Authorizer = {
  authorize() {},
  authorizeSome() {},
  allowed: () => true,
  guard: () => NOTHING_TO_RELEASE,
};

const NOTHING_TO_RELEASE = (): void => {};
