import { useState } from 'preact/hooks';
import { Api, messageOf } from '../api.js';
import type { WhoAmIResponse } from '../types.js';

/** Props of SignIn. */
export interface SignInProps {
  /** Shown at first, e.g. why the last session ended. */
  readonly notice: string | undefined;
  /** The token was accepted: cfgd says who it is. */
  readonly onSignedIn: (token: string, whoami: WhoAmIResponse) => void;
}

/**
 * The sign-in form: a token, checked with `GET /v1/whoami` before it is kept. A refusal shows
 * the API's message.
 */
export function SignIn({ notice, onSignedIn }: SignInProps) {
  const [token, setToken] = useState('');
  const [error, setError] = useState(notice);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    const value = token.trim();
    if (value === '') {
      setError('Enter a token');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      const whoami = await new Api(value).call<WhoAmIResponse>('/v1/whoami');
      onSignedIn(value, whoami);
    } catch (failure: unknown) {
      setError(messageOf(failure));
      setBusy(false);
    }
  };

  return (
    <main id="main" class="sign-in">
      <h1>cfgd console</h1>
      <form aria-label="Sign in" onSubmit={(event) => void submit(event)}>
        <label for="token">Token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellcheck={false}
          value={token}
          onInput={(event) => setToken(event.currentTarget.value)}
          aria-describedby="token-help"
        />
        <p id="token-help" class="hint">
          A cfgd token (<code>cfgd_…</code>) or a JWT. It is kept in this tab only.
        </p>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error !== undefined && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
      </form>
    </main>
  );
}
