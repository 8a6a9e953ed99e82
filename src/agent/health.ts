/**
 * The agent's own health endpoint: `GET /healthz` on a small node:http
 * server, for the orchestrator that runs the agent beside its app.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What `/healthz` answers: its status (200 ready, 503 not) and JSON body. */
export interface HealthAnswer {
  readonly ready: boolean;
  readonly body: unknown;
}

/** A listening health server. */
export interface HealthServer {
  /** `host:port` it listens on (the port the system chose for port 0). */
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Listens on `host:port` and answers `GET /healthz` (and HEAD) with
 * `answer()`: 200 when ready, 503 otherwise, as JSON; 404 for any other path
 * and 405 for another method on it.
 */
export async function startHealthServer(
  host: string,
  port: number,
  answer: () => Promise<HealthAnswer>,
): Promise<HealthServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?', 1)[0];
    if (path !== '/healthz') {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { 'content-type': 'application/json', allow: 'GET, HEAD' });
      response.end('{"error":"method not allowed"}\n');
      return;
    }
    answer().then(
      ({ ready, body }) => {
        response.writeHead(ready ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        response.end(request.method === 'HEAD' ? undefined : `${JSON.stringify(body)}\n`);
      },
      () => {
        response.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"internal"}\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    address: bound.family === 'IPv6' ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
