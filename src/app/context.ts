/** Who is making a request. Until authentication exists every caller is anonymous. */
export interface Principal {
  readonly id: string;
  readonly anonymous: boolean;
}

export const ANONYMOUS: Principal = { id: 'anonymous', anonymous: true };

/** What the app layer knows about the request beyond its arguments. */
export interface RequestContext {
  readonly principal: Principal;
  /** Aborted when the client goes away, the deadline passes or the server stops. */
  readonly signal: AbortSignal;
}

export type Action = 'read' | 'write' | 'watch';

/**
 * Decides whether a principal may perform an action on a config; throws
 * PERMISSION_DENIED (or UNAUTHENTICATED) otherwise. Runs before any lookup, so
 * a forbidden caller cannot learn whether a config exists.
 */
export interface Authorizer {
  authorize(principal: Principal, action: Action, resource: string): Promise<void>;
}

/** The policy while cfgd has no authentication: everything is allowed. */
export const allowAll: Authorizer = {
  async authorize() {},
};
