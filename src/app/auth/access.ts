import { allows, allowsSomeOf, CfgdError, type Grant, type Verb } from '../../domain/index.js';
import type { Authorizer, Principal } from '../context.js';
import { tokenProblem } from './authenticator.js';
import type { CredentialRegistry } from './registry.js';

/** setTimeout's longest delay; a later expiry is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const NOTHING_TO_RELEASE = (): void => {};

interface Guarded {
  readonly principal: Principal;
  readonly verb: Verb;
  readonly resource: string;
  readonly lost: (reason: CfgdError) => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Authorization by grants, for every kind of principal: one path. `authorize`
 * checks the grants authentication resolved for the call; `guard` keeps
 * checking for a stream's whole life, after every change of tokens or
 * bindings (on any node: the registry follows the store) and at the
 * credential's expiry, and reports when access is gone. A guard is one small
 * record (and a timer for a credential that expires): 10,000 streams hold
 * 10,000 of them.
 */
export class GrantAuthorizer implements Authorizer {
  private readonly streams = new Set<Guarded>();
  private readonly stopListening: () => void;

  constructor(
    private readonly registry: CredentialRegistry,
    private readonly clock: () => Date,
  ) {
    this.stopListening = registry.onChange(() => this.recheckAll());
  }

  authorize(principal: Principal, verb: Verb, resource: string): void {
    if (!allows(principal.grants, verb, resource)) throw denied(principal, verb, resource);
  }

  authorizeSome(principal: Principal, verb: Verb, userId: string): void {
    if (!allowsSomeOf(principal.grants, verb, userId)) throw denied(principal, verb, `users/${userId}/configs`);
  }

  allowed(principal: Principal, verb: Verb, resource: string): boolean {
    return allows(principal.grants, verb, resource);
  }

  guard(principal: Principal, verb: Verb, resource: string, lost: (reason: CfgdError) => void): () => void {
    const entry: Guarded = { principal, verb, resource, lost, timer: undefined };
    // A change between `authorize` and now (the stream opening) is not missed.
    const problem = this.standing(entry);
    if (problem !== undefined) {
      lost(problem);
      return NOTHING_TO_RELEASE;
    }
    this.streams.add(entry);
    if (principal.expiresAt !== undefined) this.armExpiry(entry, principal.expiresAt);
    return () => this.release(entry);
  }

  /** Guarded streams open now (for status and leak tests). */
  get guardedStreams(): number {
    return this.streams.size;
  }

  close(): void {
    this.stopListening();
  }

  private recheckAll(): void {
    for (const entry of [...this.streams]) {
      const problem = this.standing(entry);
      if (problem !== undefined) this.end(entry, problem);
    }
  }

  private armExpiry(entry: Guarded, expiresAt: number): void {
    const left = expiresAt - this.clock().getTime();
    if (left <= 0) {
      this.end(entry, this.standing(entry) ?? expired(entry.principal));
      return;
    }
    entry.timer = setTimeout(() => this.armExpiry(entry, expiresAt), Math.min(left, MAX_TIMER_MS));
    entry.timer.unref();
  }

  private end(entry: Guarded, reason: CfgdError): void {
    if (!this.streams.has(entry)) return;
    this.release(entry);
    entry.lost(reason);
  }

  private release(entry: Guarded): void {
    this.streams.delete(entry);
    clearTimeout(entry.timer);
  }

  /** Why the stream's caller may no longer go on, or undefined while it may. */
  private standing(entry: Guarded): CfgdError | undefined {
    const { principal, verb, resource } = entry;
    let grants: readonly Grant[];
    switch (principal.source.kind) {
      case 'everything':
        return undefined;
      case 'token': {
        const token = this.registry.token(principal.source.tokenId);
        if (token === undefined) {
          return new CfgdError('unauthenticated', 'TOKEN_REVOKED', 'the token no longer exists');
        }
        const problem = tokenProblem(token, this.clock().getTime());
        if (problem !== undefined) return problem;
        grants = token.grants;
        break;
      }
      case 'binding':
        grants = [...(this.registry.binding(principal.id)?.grants ?? []), ...principal.source.claimGrants];
        break;
    }
    if (principal.expiresAt !== undefined && principal.expiresAt <= this.clock().getTime()) return expired(principal);
    if (!allows(grants, verb, resource)) {
      return new CfgdError(
        'permission-denied',
        'PERMISSION_DENIED',
        `${principal.id} may no longer ${verb} ${resource}: its grants changed`,
        { metadata: { verb, resource } },
      );
    }
    return undefined;
  }
}

function denied(principal: Principal, verb: Verb, resource: string): CfgdError {
  // Names only what the caller asked for: nothing about whether it exists.
  return new CfgdError('permission-denied', 'PERMISSION_DENIED', `${principal.id} may not ${verb} ${resource}`, {
    metadata: { verb, resource },
  });
}

function expired(principal: Principal): CfgdError {
  const when = principal.expiresAt === undefined ? '' : ` at ${new Date(principal.expiresAt).toISOString()}`;
  return new CfgdError('unauthenticated', 'TOKEN_EXPIRED', `the credentials of ${principal.id} expired${when}`);
}
