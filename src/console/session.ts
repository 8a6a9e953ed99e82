// The signed-in user: the token (kept in sessionStorage, for this tab only), who cfgd says it is,
// and what its grants allow.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Api } from './api.js';
import { allows, type Verb } from './grants.js';
import type { Grant } from './types.js';

/** Where the token is kept: sessionStorage, so it ends with the tab and never reaches a URL. */
export const TOKEN_KEY = 'cfgd.token';

/** The signed-in user. */
export interface Session {
  readonly api: Api;
  /** The principal audit entries name, e.g. `token:alice`. */
  readonly principal: string;
  readonly grants: readonly Grant[];
}

/** The session of the views below the sign-in. */
export const SessionContext = createContext<Session | undefined>(undefined);

/** The signed-in user; only views shown after sign-in use it. */
export function useSession(): Session {
  const session = useContext(SessionContext);
  if (session === undefined) throw new Error('useSession outside a signed-in view');
  return session;
}

/** Whether the session's grants allow `verb` on a config. */
export function may(session: Session, verb: Verb, user: string, config: string): boolean {
  return allows(session.grants, verb, user, config);
}

/** The stored token, if any (sessionStorage can be unavailable: then there is none). */
export function storedToken(): string | undefined {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

/** Keeps the token (or forgets it: undefined) for this tab. */
export function storeToken(token: string | undefined): void {
  try {
    if (token === undefined) sessionStorage.removeItem(TOKEN_KEY);
    else sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    // Without sessionStorage the token lives in memory only, until the page is left.
  }
}
