import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { CallSignals } from '../call-signals.js';
import { ANONYMOUS } from '../../app/context.js';
import { CfgdError } from '../../domain/index.js';
import { HttpStatusError } from '../status.js';
import { errorBody, readJsonBody, sendJson, type Route } from './http.js';
import { matchTemplate } from './path-template.js';

/** One instance for every request whose client left: nobody is left to read it. */
const CLIENT_GONE = new CfgdError('cancelled', 'CANCELLED', 'the client went away');

export interface RestServerOptions {
  /** `host:port`; port 0 picks a free port. */
  readonly address: string;
  readonly routes: readonly Route[];
  readonly maxBodyBytes: number;
  readonly log: Logger;
  /** Aborted when the server shuts down; its reason ends open streams. */
  readonly shutdown: AbortSignal;
}

export interface RunningRestServer {
  readonly port: number;
  /** Stops taking requests; waits up to `graceMs` for running ones, then cuts them. */
  shutdown(graceMs: number): Promise<void>;
}

/** The HTTP server of the REST shim: routing, contexts and the JSON error body. */
export async function startRestServer(options: RestServerOptions): Promise<RunningRestServer> {
  const { routes, log, shutdown } = options;
  const calls = new CallSignals(shutdown);
  const onUnexpected = (error: unknown): void => log.error({ err: error }, 'unexpected error in a request');

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://cfgd.invalid');
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const allowed = new Set<string>();
    let found: { route: Route; params: Record<string, string> } | undefined;
    for (const route of routes) {
      const params = matchTemplate(route.template, url.pathname);
      if (params === undefined) continue;
      allowed.add(route.method);
      if (route.method === method && found === undefined) found = { route, params };
    }
    if (found === undefined) {
      if (allowed.size === 0) {
        throw new HttpStatusError(404, 'not-found', 'ROUTE_NOT_FOUND', `no route for ${req.method} ${url.pathname}`);
      }
      const allow = [...allowed, ...(allowed.has('GET') ? ['HEAD'] : [])].join(', ');
      throw new HttpStatusError(
        405,
        'unimplemented',
        'METHOD_NOT_ALLOWED',
        `${req.method} is not allowed on ${url.pathname}; allowed: ${allow}`,
        { allow },
      );
    }
    const call = calls.open();
    res.once('close', () => {
      call.release();
      call.controller.abort(CLIENT_GONE);
    });
    await found.route.handle({
      req,
      res,
      url,
      params: found.params,
      ctx: { principal: ANONYMOUS, signal: call.controller.signal },
      readJsonBody: () => readJsonBody(req, options.maxBodyBytes),
    });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        if (!res.writableEnded) res.end();
        return;
      }
      const { status, body, headers } = errorBody(error, onUnexpected);
      sendJson(res, status, body, headers);
      // A refused body may still be arriving: discard it rather than leave the client waiting.
      if (!req.complete) req.resume();
    });
  });
  server.on('clientError', (error, socket) => {
    log.debug({ err: error }, 'malformed HTTP request');
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
  });

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
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

function splitAddress(address: string): [string, string] {
  const colon = address.lastIndexOf(':');
  return [address.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), address.slice(colon + 1)];
}
