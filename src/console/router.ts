// Routes in the URL's hash, so that a reload or a shared link opens the same page. The token is
// never part of a URL.
import { useEffect, useState } from 'preact/hooks';

/** A page of the console. */
export type Route =
  | { readonly page: 'users' }
  | { readonly page: 'configs'; readonly user: string }
  | { readonly page: 'config'; readonly user: string; readonly config: string }
  | { readonly page: 'unknown'; readonly hash: string };

function decode(segment: string): string | undefined {
  try {
    const name = decodeURIComponent(segment);
    return name === '' ? undefined : name;
  } catch {
    return undefined;
  }
}

/** The route of a hash: `#/`, `#/users/{u}`, `#/users/{u}/configs/{c}`. */
export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '');
  if (path === '' || path === '/') return { page: 'users' };
  const parts = path.replace(/^\//, '').replace(/\/$/, '').split('/');
  const user = parts[0] === 'users' ? decode(parts[1] ?? '') : undefined;
  if (user !== undefined && parts.length === 2) return { page: 'configs', user };
  const config = decode(parts[3] ?? '');
  if (user !== undefined && parts.length === 4 && parts[2] === 'configs' && config !== undefined) {
    return { page: 'config', user, config };
  }
  return { page: 'unknown', hash };
}

/** The hash of the users page. */
export const usersHref = '#/';

/** The hash of a user's configs. */
export function userHref(user: string): string {
  return `#/users/${encodeURIComponent(user)}`;
}

/** The hash of a config's page. */
export function configHref(user: string, config: string): string {
  return `${userHref(user)}/configs/${encodeURIComponent(config)}`;
}

/** The current route, following the hash. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = (): void => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
