import { useCallback, useEffect, useMemo, useState } from 'preact/hooks';
import { Api, type ApiError, messageOf } from './api.js';
import { configHref, type Route, useRoute, userHref, usersHref } from './router.js';
import { type Session, SessionContext, storedToken, storeToken } from './session.js';
import type { WhoAmIResponse } from './types.js';
import { ConfigPage } from './views/config-page.js';
import { ConfigsPage } from './views/configs-page.js';
import { SignIn } from './views/sign-in.js';
import { UsersPage } from './views/users-page.js';

/** The alert shown when a call answers 401 (the token expired or was revoked). */
export const SESSION_ENDED = 'Your session ended: sign in again';

type State =
  | { readonly kind: 'signed-out'; readonly notice: string | undefined }
  | { readonly kind: 'checking'; readonly token: string }
  | { readonly kind: 'unreachable'; readonly token: string; readonly message: string }
  | { readonly kind: 'signed-in'; readonly token: string; readonly whoami: WhoAmIResponse };

function initialState(): State {
  const token = storedToken();
  return token === undefined || token === '' ? { kind: 'signed-out', notice: undefined } : { kind: 'checking', token };
}

/** The console: the sign-in until a token is accepted, then the pages of the route. */
export function App() {
  const [state, setState] = useState<State>(initialState);
  const token = state.kind === 'signed-out' ? undefined : state.token;

  const signOut = useCallback((notice?: string, ifToken?: string) => {
    // A late 401 of a session already left must not end the session that followed it.
    if (ifToken !== undefined && storedToken() !== ifToken) return;
    storeToken(undefined);
    setState({ kind: 'signed-out', notice });
  }, []);

  const api = useMemo(
    () => (token === undefined ? undefined : new Api(token, (_error: ApiError) => signOut(SESSION_ENDED, token))),
    [token, signOut],
  );

  useEffect(() => {
    if (state.kind !== 'checking' || api === undefined) return;
    let current = true;
    api.call<WhoAmIResponse>('/v1/whoami').then(
      (whoami) => current && setState({ kind: 'signed-in', token: state.token, whoami }),
      (error: unknown) => {
        if (current && (error as ApiError).status !== 401) {
          setState({ kind: 'unreachable', token: state.token, message: messageOf(error) });
        }
      },
    );
    return () => {
      current = false;
    };
  }, [state, api]);

  if (state.kind === 'signed-out') {
    return (
      <SignIn
        notice={state.notice}
        onSignedIn={(value, whoami) => {
          storeToken(value);
          setState({ kind: 'signed-in', token: value, whoami });
        }}
      />
    );
  }
  if (state.kind !== 'signed-in' || api === undefined) {
    return (
      <main id="main" class="sign-in">
        <h1>cfgd console</h1>
        {state.kind === 'unreachable' ? (
          <>
            <p role="alert" class="error">
              {state.message}
            </p>
            <button type="button" onClick={() => setState({ kind: 'checking', token: state.token })}>
              Try again
            </button>{' '}
            <button type="button" onClick={() => signOut()}>
              Sign out
            </button>
          </>
        ) : (
          <p role="status">Signing in…</p>
        )}
      </main>
    );
  }
  const session: Session = { api, principal: state.whoami.principal, grants: state.whoami.grants ?? [] };
  return (
    <SessionContext.Provider value={session}>
      <SignedIn session={session} onSignOut={() => signOut()} />
    </SessionContext.Provider>
  );
}

function SignedIn({ session, onSignOut }: { readonly session: Session; readonly onSignOut: () => void }) {
  const route = useRoute();
  return (
    <>
      <header class="top">
        <a class="brand" href={usersHref}>
          cfgd
        </a>
        <span class="who">
          Signed in as <strong class="principal">{session.principal}</strong>
        </span>
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <Breadcrumbs route={route} />
      <main id="main">
        <Page route={route} />
      </main>
    </>
  );
}

function Page({ route }: { readonly route: Route }) {
  switch (route.page) {
    case 'users':
      return <UsersPage />;
    case 'configs':
      return <ConfigsPage key={route.user} user={route.user} />;
    case 'config':
      return <ConfigPage key={`${route.user}/${route.config}`} user={route.user} config={route.config} />;
    case 'unknown':
      return (
        <>
          <h1>No such page</h1>
          <p>
            <a href={usersHref}>Go to the users</a>
          </p>
        </>
      );
  }
}

function Breadcrumbs({ route }: { readonly route: Route }) {
  const crumbs: [string, string][] = [['Users', usersHref]];
  if (route.page === 'configs' || route.page === 'config') crumbs.push([route.user, userHref(route.user)]);
  if (route.page === 'config') crumbs.push([route.config, configHref(route.user, route.config)]);
  return (
    <nav aria-label="Breadcrumb" class="crumbs">
      <ol>
        {crumbs.map(([label, href], index) => (
          <li key={href}>
            <a href={href} aria-current={index === crumbs.length - 1 ? 'page' : undefined}>
              {label}
            </a>
          </li>
        ))}
      </ol>
    </nav>
  );
}
