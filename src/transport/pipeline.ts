import type { Logger } from 'pino';
import { ANONYMOUS, type Principal, type RequestContext } from '../app/context.js';
import { CfgdError } from '../domain/index.js';
import type { ClientCertificate } from './tls.js';

/**
 * What a transport knows about a call, in the same shape for gRPC and REST.
 * Transports read these from the call when asked (a watch stream lives for
 * hours, and a copy per stream costs memory at scale): read them while the
 * call runs, as interceptors do.
 */
export interface CallInfo {
  /**
   * The operation: the RPC's full name (`cfgd.v1.ConfigService/Put`) on gRPC and on the REST
   * routes derived from it, or the legacy route (`legacy POST /values/{user_id}/{config_name}`).
   */
  readonly method: string;
  readonly transport: 'grpc' | 'rest';
  /** True when the call answers with a stream (gRPC server stream, SSE). */
  readonly streaming: boolean;
  /** The client's `x-request-id`, or one made up for the call: ties its log lines together. */
  readonly requestId: string;
  /** The client's address, `host:port`, when known. */
  readonly peer: string | undefined;
  /** When the client stops waiting (epoch ms), when it said so. */
  readonly deadline: number | undefined;
  /** The `authorization` header or metadata the client sent, if any. */
  readonly authorization: string | undefined;
  /** The client certificate the TLS layer verified (mTLS), if any. */
  readonly clientCertificate: ClientCertificate | undefined;
  /** Who the call ran as (`Principal.id`), once the pipeline knows: for the access log. */
  principal: string | undefined;
}

/** One call on its way through the interceptors. */
export interface PipelineCall {
  readonly info: CallInfo;
  /** Aborted when the client goes away, its deadline passes or the server stops. */
  readonly signal: AbortSignal;
  /** Who is calling; an interceptor (authentication) may set it before the call runs. */
  principal: Principal;
}

/**
 * Establishes who is calling from what the call carries, or throws
 * UNAUTHENTICATED. Answers synchronously when it can (a credential seen
 * before), so that the common call costs no extra turn of the event loop.
 */
export type Authenticate = (info: CallInfo) => Principal | Promise<Principal>;

/**
 * A step every call of every transport goes through, around the call itself
 * (access logs, metrics, rate limits …). It calls `next()` to
 * go on, at most once, and returns or throws what that returns or throws; it
 * may also throw before calling it (a refused call never runs). For a
 * streaming call, `next()` settles when the stream is over.
 */
export type Interceptor = (call: PipelineCall, next: () => Promise<unknown>) => Promise<unknown>;

/**
 * The one request pipeline of both transports: the gRPC adapter and the REST
 * server (the annotation-derived routes and the legacy ones alike) run every
 * call through `run`, which runs the interceptors in order around the call,
 * authenticates it (innermost, so the interceptors see refused calls too),
 * builds the request context, and turns an error that is not a `CfgdError`
 * into INTERNAL, logged once here with what identifies the call. Without
 * `authenticate` (authentication off) every caller is `ANONYMOUS`.
 */
export class RequestPipeline {
  constructor(
    private readonly interceptors: readonly Interceptor[],
    private readonly log: Logger,
    private readonly authenticate?: Authenticate,
  ) {}

  /**
   * Runs a call through the interceptors and authentication. An `open` call
   * (a probe, the OpenAPI document) skips authentication: with it on, the call
   * runs as `UNAUTHENTICATED_CALLER`, who holds no grant.
   */
  run<T>(info: CallInfo, signal: AbortSignal, invoke: (ctx: RequestContext) => Promise<T>, open = false): Promise<T> {
    if (open) {
      const principal = this.authenticate === undefined ? ANONYMOUS : UNAUTHENTICATED_CALLER;
      info.principal = principal.id;
      return attempt(() => invoke({ principal, signal })).then(undefined, (error: unknown) => {
        throw this.toCfgdError(error, info);
      });
    }
    const outcome =
      this.interceptors.length === 0
        ? // Without interceptors a call costs one context object, no chain: a watch stream's call
          // lives for hours, and at 10,000 streams every object it keeps counts.
          this.authenticated(info, ANONYMOUS, signal, invoke)
        : this.chain(info, signal, invoke);
    return outcome.then(undefined, (error: unknown) => {
      throw this.toCfgdError(error, info);
    });
  }

  private async chain<T>(info: CallInfo, signal: AbortSignal, invoke: (ctx: RequestContext) => Promise<T>): Promise<T> {
    const call: PipelineCall = { info, signal, principal: ANONYMOUS };
    let result: T | undefined;
    const step = async (index: number): Promise<unknown> => {
      const interceptor = this.interceptors[index];
      if (interceptor === undefined) {
        result = await this.authenticated(info, call.principal, signal, invoke);
        return result;
      }
      return interceptor(call, () => step(index + 1));
    };
    await step(0);
    return result as T;
  }

  /** Runs the call as the principal authentication establishes, or as `otherwise` without authentication. */
  private authenticated<T>(
    info: CallInfo,
    otherwise: Principal,
    signal: AbortSignal,
    invoke: (ctx: RequestContext) => Promise<T>,
  ): Promise<T> {
    if (this.authenticate === undefined) {
      info.principal = otherwise.id;
      return attempt(() => invoke({ principal: otherwise, signal }));
    }
    let principal: Principal | Promise<Principal>;
    try {
      principal = this.authenticate(info);
    } catch (error: unknown) {
      return Promise.reject(error);
    }
    if (principal instanceof Promise) {
      return principal.then((resolved) => {
        info.principal = resolved.id;
        return invoke({ principal: resolved, signal });
      });
    }
    info.principal = principal.id;
    return attempt(() => invoke({ principal, signal }));
  }

  /** A `CfgdError` as it is; anything else logged (a server fault) and replaced by a generic INTERNAL. */
  toCfgdError(error: unknown, info: CallInfo): CfgdError {
    if (error instanceof CfgdError) return error;
    this.log.error({ err: error, method: info.method, requestId: info.requestId }, 'unexpected error in a request');
    return new CfgdError('internal', 'INTERNAL', 'internal error', { cause: error });
  }
}

/**
 * Who an open call runs as with authentication on: nobody, with no grant, so
 * that an open route can never be used to act on a config.
 */
export const UNAUTHENTICATED_CALLER: Principal = {
  id: 'unauthenticated',
  kind: 'anonymous',
  grants: [],
  source: { kind: 'binding', claimGrants: [] },
};

/** The promise `action` returns, or a rejected one if it throws before returning one. */
function attempt<T>(action: () => Promise<T>): Promise<T> {
  try {
    return action();
  } catch (error: unknown) {
    return Promise.reject(error);
  }
}
