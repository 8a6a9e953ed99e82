import type { Authenticator } from '../app/auth/authenticator.js';
import type { Interceptor } from './pipeline.js';

/**
 * The interceptor that establishes who is calling, for every call of both
 * transports, before the call runs: from the `authorization` header or
 * metadata, else the verified client certificate. A call it cannot
 * authenticate never runs and ends with UNAUTHENTICATED.
 */
export function authentication(authenticator: Authenticator): Interceptor {
  return (call, next) => {
    const principal = authenticator.authenticate({
      authorization: call.info.authorization,
      certificate: call.info.clientCertificate,
    });
    if (!(principal instanceof Promise)) {
      // Known credentials: no extra turn of the event loop on the hot path.
      call.principal = principal;
      return next();
    }
    return principal.then((resolved) => {
      call.principal = resolved;
      return next();
    });
  };
}
