import type { Authenticator } from '../app/auth/authenticator.js';
import type { Authenticate } from './pipeline.js';

/**
 * The request pipeline's authentication step, for every call of both
 * transports, before the call runs: from the `authorization` header or
 * metadata, else the verified client certificate (read only when there is no
 * header: reading it is not free). A call it cannot authenticate never runs
 * and ends with UNAUTHENTICATED.
 */
export function authentication(authenticator: Authenticator): Authenticate {
  return (info) => authenticator.authenticate(info);
}
