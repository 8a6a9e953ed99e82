import {
  createServer,
  maxHeaderSize,
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { randomUUID } from 'node:crypto';
import { CallSignals } from '../call-signals.js';
import { CfgdError } from '../../domain/index.js';
import type { CallInfo, RequestPipeline } from '../pipeline.js';
import { acceptedRequestId, type CallObserver, type OperationObserver } from '../observer.js';
import { describeClientCertificate, type ClientCertificate, type TlsMaterial } from '../tls.js';
import { HttpStatusError } from '../status.js';
import { errorBody, rawJsonResponse, readJsonBody, sendJson, type Route } from './http.js';
import { matchTemplate } from './path-template.js';

/** One instance for every request whose client left: nobody is left to read it. */
const CLIENT_GONE = new CfgdError('cancelled', 'CANCELLED', 'the client went away');

export interface RestServerOptions {
  /** `host:port`; port 0 picks a free port. */
  readonly address: string;
  readonly routes: readonly Route[];
  /** Every request that reaches a route goes through it. */
  readonly pipeline: RequestPipeline;
  readonly maxBodyBytes: number;
  readonly log: Logger;
  /** Aborted when the server shuts down; its reason ends open streams. */
  readonly shutdown: AbortSignal;
  /** Serve HTTPS with this material (and require client certificates when it has a client CA); HTTP without. */
  readonly tls?: TlsMaterial | undefined;
  /** Sees every request (metrics, the access log); without it nothing is measured. */
  readonly observer?: CallObserver | undefined;
}

export interface RunningRestServer {
  readonly port: number;
  /** Stops taking requests; waits up to `graceMs` for running ones, then cuts them. */
  shutdown(graceMs: number): Promise<void>;
}

/** The HTTP(S) server of the REST shim: routing, contexts and the JSON error body. */
export async function startRestServer(options: RestServerOptions): Promise<RunningRestServer> {
  const { routes, pipeline, log, shutdown } = options;
  const calls = new CallSignals(shutdown);
  const onUnexpected = (error: unknown): void => log.error({ err: error }, 'unexpected error in a request');
  const { observer } = options;
  const recorders = new Map<Route, OperationObserver>();
  if (observer !== undefined) {
    for (const route of routes) {
      const { method, streaming } = route;
      recorders.set(route, observer.operation({ transport: 'rest', method, route: route.template.source, streaming }));
    }
  }
  const unmatched = observer?.operation({ transport: 'rest', method: 'ANY', route: 'unmatched', streaming: false });

  /** The route for a request, or the 404/405 error that says why there is none. */
  function route(method: string | undefined, url: URL): { route: Route; params: Record<string, string> } {
    // HEAD is GET without a body: Node drops whatever a HEAD response writes, and routes that
    // stream look at the request's method to answer at once instead of opening a stream.
    const wanted = method === 'HEAD' ? 'GET' : method;
    const allowed = new Set<string>();
    let found: { route: Route; params: Record<string, string> } | undefined;
    for (const candidate of routes) {
      const params = matchTemplate(candidate.template, url.pathname);
      if (params === undefined) continue;
      allowed.add(candidate.method);
      if (candidate.method === wanted && found === undefined) found = { route: candidate, params };
    }
    if (found !== undefined) return found;
    if (allowed.size === 0) {
      throw new HttpStatusError(404, 'not-found', 'ROUTE_NOT_FOUND', `no route for ${method} ${url.pathname}`);
    }
    const allow = [...allowed, ...(allowed.has('GET') ? ['HEAD'] : [])].join(', ');
    throw new HttpStatusError(
      405,
      'unimplemented',
      'METHOD_NOT_ALLOWED',
      `${method} is not allowed on ${url.pathname}; allowed: ${allow}`,
      { allow },
    );
  }

  /** What the observer is told of a request once it is over. */
  interface Observed {
    route: Route | undefined;
    info: RestCallInfo | undefined;
    error: CfgdError | undefined;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, observed: Observed): Promise<void> {
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      // RFC 9112 §3.2 requires the 400; checked here, not by Node, so that it has the JSON body.
      throw new HttpStatusError(400, 'invalid-argument', 'HOST_REQUIRED', 'an HTTP/1.1 request needs a Host header');
    }
    const url = requestUrl(req.url ?? '/');
    const found = route(req.method, url);
    const call = calls.open();
    res.once('close', () => {
      call.release();
      call.controller.abort(CLIENT_GONE);
    });
    const { route: target, params } = found;
    const info = new RestCallInfo(req, target.name, target.streaming);
    observed.route = target;
    observed.info = info;
    recorders.get(target)?.started();
    await pipeline.run(
      info,
      call.controller.signal,
      (ctx) =>
        target.handle({ req, res, url, params, ctx, readJsonBody: () => readJsonBody(req, options.maxBodyBytes) }),
      target.open === true,
    );
  }

  /** Tells the observer of the request when its response is over (answered, or the client gone). */
  function observe(res: ServerResponse, observed: Observed): void {
    const began = performance.now();
    res.once('close', () => {
      let recorder: OperationObserver | undefined;
      if (observed.route === undefined) {
        recorder = unmatched;
        recorder?.started();
      } else {
        recorder = recorders.get(observed.route);
      }
      const status = res.headersSent ? res.statusCode : 499;
      recorder?.finished(status, (performance.now() - began) / 1000, observed.info, observed.error);
    });
  }

  // The response under way on each connection: an answer to a request the parser refused goes
  // straight onto the socket, so it is written only where it cannot corrupt a response begun.
  const responding = new WeakMap<Duplex, ServerResponse>();
  /** Writes an error onto a bare socket and closes it; for requests Node gives no response for. */
  function answerOnSocket(socket: Duplex, error: HttpStatusError): void {
    const { status, body, headers } = errorBody(error, onUnexpected);
    socket.end(rawJsonResponse(status, body, headers));
  }

  const onRequest: RequestListener = (req, res) => {
    responding.set(req.socket, res);
    res.once('close', () => {
      if (responding.get(req.socket) === res) responding.delete(req.socket);
    });
    const requestId = acceptedRequestId(header(req, 'x-request-id'));
    if (requestId !== undefined) res.setHeader('x-request-id', requestId);
    // Until a route takes it, the request is described as it came (its method as the operation).
    const observed: Observed = {
      route: undefined,
      info: observer === undefined ? undefined : new RestCallInfo(req, req.method ?? 'unknown', false),
      error: undefined,
    };
    if (observer !== undefined) observe(res, observed);
    handle(req, res, observed).catch((error: unknown) => {
      if (error instanceof CfgdError) observed.error = error;
      if (error instanceof CfgdError && error.kind === 'cancelled') {
        // A client that hung up is an everyday event: a debug line without a stack, so that
        // errors a person must act on stand out. The cause's code says how it went away.
        log.debug(
          { method: req.method, reason: error.reason, cause: errorCode(error.cause) },
          'request ended by the client',
        );
      }
      if (res.headersSent) {
        if (!res.writableEnded) res.end();
        return;
      }
      // The connection is gone, or already answered by the clientError handler: nobody is left
      // to read an answer.
      if (res.destroyed || res.socket?.writable === false) return;
      const { status, body, headers } = errorBody(error, onUnexpected);
      sendJson(res, status, body, headers);
      // A refused body may still be arriving: discard it rather than leave the client waiting.
      if (!req.complete) req.resume();
    });
  };
  const { tls } = options;
  const server: Server =
    tls === undefined
      ? createServer({ requireHostHeader: false }, onRequest)
      : createHttpsServer({ requireHostHeader: false, ...httpsOptions(tls) }, onRequest);
  // Connections whose TLS handshake failed: node:https hands their error on to 'clientError' too.
  const handshakeFailed = new WeakSet<Duplex>();
  // Before node:https's own listener, which passes the error on to 'clientError' (below).
  server.prependListener('tlsClientError', (error: Error & { code?: string }, socket: TLSSocket) => {
    // An everyday event (a port scanner, a client without a certificate or with one of another
    // CA, plain HTTP sent to the HTTPS port): nobody has to act on it.
    handshakeFailed.add(socket);
    // A certificate of another CA is refused by destroying the socket, reported as ECONNRESET:
    // why is in authorizationError (a code such as UNABLE_TO_VERIFY_LEAF_SIGNATURE, not an Error).
    const refused: unknown = socket.authorizationError;
    const peer = socket.remoteAddress === undefined ? undefined : `${socket.remoteAddress}:${socket.remotePort ?? ''}`;
    log.debug(
      { code: error.code, certificate: typeof refused === 'string' ? refused : undefined, peer },
      'TLS handshake failed',
    );
    socket.destroy();
  });
  server.on('clientError', (error: ParserError, socket: Duplex) => {
    if (handshakeFailed.has(socket)) return;
    // Never the error itself: its rawPacket holds the request's bytes, headers and all.
    log.debug({ code: error.code, reason: error.reason }, 'malformed HTTP request');
    const answer = parserErrorAnswer(error);
    const res = responding.get(socket);
    if (answer !== undefined && socket.writable && (res === undefined || !res.headersSent)) {
      answerOnSocket(socket, answer);
    } else {
      socket.destroy();
    }
  });
  // Node closes a CONNECT's connection without a word unless someone listens; cfgd is no proxy,
  // so no route takes CONNECT and the lookup says why (404, or 405 with Allow).
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    try {
      route(req.method, requestUrl(req.url ?? '/'));
      socket.destroy();
    } catch (error: unknown) {
      if (error instanceof HttpStatusError) answerOnSocket(socket, error);
      else socket.destroy();
    }
  });
  // Node answers an Expect other than 100-continue with a bare 417 unless someone listens.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    const expectation = new HttpStatusError(
      417,
      'invalid-argument',
      'EXPECTATION_UNSUPPORTED',
      `the only expectation cfgd meets is Expect: 100-continue, got "${req.headers.expect ?? ''}"`,
      { connection: 'close' },
    );
    const { status, body, headers } = errorBody(expectation, onUnexpected);
    sendJson(res, status, body, headers);
  });

  // Node's HTTP server takes a TLS connection as its own only once its handshake is done, so
  // closeAllConnections() misses one still in it, and close() waits for it: a client that
  // connects and sends nothing would hold shutdown for the handshake timeout (120 s).
  const connections = new Set<Socket>();
  if (tls !== undefined) {
    server.on('connection', (socket: Socket) => {
      connections.add(socket);
      socket.once('close', () => connections.delete(socket));
    });
  }

  const [host, portText] = splitAddress(options.address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(portText), host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    shutdown: (graceMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.closeAllConnections();
          for (const socket of connections) socket.destroy();
        }, graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

/**
 * The request target as a URL: origin-form (`/path?query`, taken as a path even when it starts
 * with `//`) or absolute-form (`http://host/path`). Anything else is the client's mistake.
 */
function requestUrl(target: string): URL {
  try {
    if (target.startsWith('/')) return new URL(`http://cfgd.invalid${target}`);
    const url = new URL(target);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url;
  } catch {
    // Not a URL at all: refused below like any other target that is not a path.
  }
  throw new HttpStatusError(
    400,
    'invalid-argument',
    'REQUEST_TARGET_INVALID',
    'the request target must be a path such as /v1/status, or an absolute http URL',
  );
}

/** What Node's HTTP parser reports in `clientError`: `code` HPE_* (llhttp) and a `reason`. */
interface ParserError extends Error {
  readonly code?: string;
  readonly reason?: string;
}

/**
 * The answer to a request Node's parser refused, or undefined when there is none to give (the
 * connection itself failed: a reset, a timeout of the socket).
 */
function parserErrorAnswer(error: ParserError): HttpStatusError | undefined {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HttpStatusError(
        431,
        'resource-exhausted',
        'HEADERS_TOO_LARGE',
        `the request line and headers exceed the limit of ${maxHeaderSize} bytes`,
      );
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new HttpStatusError(
        413,
        'resource-exhausted',
        'CHUNK_EXTENSIONS_TOO_LARGE',
        'the chunk extensions are too large',
      );
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new HttpStatusError(408, 'cancelled', 'REQUEST_TIMEOUT', 'the request did not arrive in time');
  }
  if (error.code?.startsWith('HPE_') !== true) return undefined;
  // llhttp's reasons are fixed texts ("Invalid character in chunk size"), safe to pass on.
  const why = error.reason === undefined ? '' : `: ${error.reason}`;
  return new HttpStatusError(
    400,
    'invalid-argument',
    'MALFORMED_HTTP_REQUEST',
    `the request is not valid HTTP/1.1${why}`,
  );
}

/**
 * node:https options serving `tls`. With a client CA, a client must present a certificate it
 * signed: without one (or with another CA's), the connection is closed during the handshake.
 */
function httpsOptions({ cert, key, clientCa }: TlsMaterial): HttpsServerOptions {
  return clientCa === undefined
    ? { cert, key }
    : { cert, key, ca: clientCa, requestCert: true, rejectUnauthorized: true };
}

/** What an HTTP request carries, read from it when asked (an SSE stream can live for hours). */
class RestCallInfo implements CallInfo {
  readonly transport = 'rest';
  readonly deadline = undefined;
  principal: string | undefined = undefined;
  private id: string | undefined;
  /** null: asked, and there is none. */
  private certificate: ClientCertificate | null | undefined;

  constructor(
    private readonly req: IncomingMessage,
    readonly method: string,
    readonly streaming: boolean,
  ) {}

  get requestId(): string {
    return (this.id ??= acceptedRequestId(header(this.req, 'x-request-id')) ?? randomUUID());
  }

  get peer(): string | undefined {
    const socket = this.req.socket as IncomingMessage['socket'] | null;
    return socket === null ? undefined : `${socket.remoteAddress ?? ''}:${socket.remotePort ?? ''}`;
  }

  get authorization(): string | undefined {
    return header(this.req, 'authorization');
  }

  get clientCertificate(): ClientCertificate | undefined {
    if (this.certificate === undefined) {
      const socket = this.req.socket as IncomingMessage['socket'] | null;
      // Only a certificate the handshake verified against the client CA: `authorized` is false on
      // plaintext, without a client CA (none is asked for) and for one that did not verify.
      // getPeerCertificate() gives `{}`, whatever its type says, when the client sent none.
      const raw =
        socket instanceof TLSSocket && socket.authorized
          ? (socket.getPeerCertificate().raw as Buffer | undefined)
          : undefined;
      this.certificate = raw === undefined ? null : describeClientCertificate(raw);
    }
    return this.certificate ?? undefined;
  }
}

/** A request header as text (the first, if repeated). */
function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function splitAddress(address: string): [string, string] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), address.slice(colon + 1)];
}
