import { useState } from 'preact/hooks';
import { coversAnyUser, namedUsers } from '../grants.js';
import { userHref } from '../router.js';
import { useSession } from '../session.js';
import { PageHeading } from './heading.js';

const NAME = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * `#/`: the users the principal's grants name, and a form to open any user (for grants on
 * `users/*`, which name no user).
 */
export function UsersPage() {
  const { grants } = useSession();
  const users = namedUsers(grants);
  const anyUser = coversAnyUser(grants);
  const [user, setUser] = useState('');
  const [error, setError] = useState<string>();

  const open = (event: Event): void => {
    event.preventDefault();
    const name = user.trim();
    if (!NAME.test(name)) {
      setError('A user id is 1 to 128 characters from A-Z a-z 0-9 . _ -');
      return;
    }
    location.hash = userHref(name);
  };

  return (
    <>
      <PageHeading title="Users" />
      {users.length > 0 ? (
        <ul class="users" aria-label="Users">
          {users.map((name) => (
            <li key={name}>
              <a href={userHref(name)}>{name}</a>
            </li>
          ))}
        </ul>
      ) : (
        !anyUser && <p>Your grants name no user: ask an administrator for a grant.</p>
      )}
      {anyUser && (
        <form aria-label="Open user" class="inline-form" onSubmit={open}>
          <label for="open-user">User</label>
          <input
            id="open-user"
            value={user}
            autoComplete="off"
            spellcheck={false}
            onInput={(event) => {
              setUser(event.currentTarget.value);
              setError(undefined);
            }}
            aria-invalid={error !== undefined}
            aria-describedby={error !== undefined ? 'open-user-error' : undefined}
          />
          <button type="submit">Open</button>
          {error !== undefined && (
            <p id="open-user-error" role="alert" class="error">
              {error}
            </p>
          )}
        </form>
      )}
    </>
  );
}
