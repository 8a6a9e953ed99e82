import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bodyCase,
  encodeComponent,
  hostileText,
  looseEncode,
  queryString,
  validName,
  type BodyCase,
} from '../helpers/fuzz-arbitraries.js';
import { RawHttpConnection, type RawResponse } from '../helpers/fuzz-http.js';
import {
  describeInput,
  expectErrorBody,
  expectNoInternals,
  fillTemplate,
  fuzzSettings,
  Outcomes,
  servedRoutes,
  type LoggedServer,
  type SeededConfig,
  type ServedRoute,
  startFuzzTarget,
  type FuzzTarget,
} from '../helpers/fuzz-support.js';

/**
 * Fuzzes the REST server with seeded random requests that are complete and
 * well framed but hostile in content: bodies (malformed, non-object, deep,
 * huge, bad UTF-8, odd keys, wrong Content-Type), names and query strings on
 * every route, and every method on every route. All go over keep-alive
 * connections, so a connection the server dropped after an error shows.
 * Replay a failure with the printed CFGD_FUZZ_SEED.
 */

const MAX_BODY = 64 * 1024;
const settings = fuzzSettings('fuzz-rest', 500);
const started = Date.now();
const outcomes = new Outcomes();

let target: FuzzTarget;
let server: LoggedServer;
let port: number;
let seeded: SeededConfig[];
let routes: ServedRoute[];

beforeAll(async () => {
  target = await startFuzzTarget({ maxBodyBytes: MAX_BODY, heartbeatMs: 0 });
  ({ server, seeded } = target);
  port = server.cfgd.httpPort;
  routes = servedRoutes(server.cfgd);
});
afterAll(async () => {
  connection?.close();
  await server.stop();
  console.log(`fuzz-rest: ${((Date.now() - started) / 1000).toFixed(1)} s; answers: ${String(outcomes)}`);
});

interface Request {
  readonly method: string;
  readonly target: string;
  readonly headers?: Record<string, string>;
  readonly body?: BodyCase | undefined;
}

function requestBytes({ method, target, headers = {}, body }: Request): Buffer {
  const lines = [`${method} ${target} HTTP/1.1`, 'host: fuzz'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body === undefined) return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`);
  if (body.contentType !== undefined) lines.push(`content-type: ${body.contentType}`);
  if (body.chunks === undefined) {
    lines.push(`content-length: ${body.body.length}`);
    return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`), body.body]);
  }
  lines.push('transfer-encoding: chunked');
  const parts: Buffer[] = [Buffer.from(`${lines.join('\r\n')}\r\n\r\n`)];
  let at = 0;
  for (let i = 0; at < body.body.length; i++) {
    const size = Math.min(body.chunks[i % body.chunks.length]!, body.body.length - at);
    parts.push(Buffer.from(`${size.toString(16)}\r\n`), body.body.subarray(at, at + size), Buffer.from('\r\n'));
    at += size;
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

let connection: RawHttpConnection | undefined;
let previous = '(none)';

/**
 * Sends a complete request on the current keep-alive connection (a new one
 * only after the server announced it would close, or after an event stream)
 * and checks what every answer must be: a complete response, no 5xx, the
 * documented error body, no internals.
 */
async function send(request: Request): Promise<RawResponse> {
  const what = `${request.method} ${describeInput(request.target, 200)}${request.body ? ` [${request.body.kind}]` : ''}`;
  connection ??= await RawHttpConnection.open(port);
  let res: RawResponse | undefined;
  try {
    res = await connection.exchange(requestBytes(request), { head: request.method === 'HEAD', timeoutMs: 10_000 });
  } catch (error: unknown) {
    // A connection in an unknown state must not spoil the next case (or fast-check's shrinking).
    connection.close();
    connection = undefined;
    throw error;
  }
  if (res === undefined) {
    connection = undefined;
    throw new Error(
      `${what}: the server closed the connection without an answer (the request before on it: ${previous})`,
    );
  }
  previous = what;
  expect(res.status, `${what}: ${res.body.slice(0, 300)}`).toBeLessThan(500);
  expectNoInternals(res.body, what);
  if (res.status >= 400) {
    if (request.method === 'HEAD') expect(res.body, what).toBe('');
    else expectErrorBody(res.status, res.body, what);
    if (res.status === 405) expect(res.headers.allow, `${what}: Allow`).toBeDefined();
  } else if (!res.streaming && res.body !== '') {
    // Every answer is JSON but the Prometheus text of /metrics and the console's files, which say so.
    const type = String(res.headers['content-type']);
    if (type.startsWith('text/plain; version=0.0.4')) {
      expect(request.target.includes('/metrics'), `${what}: Prometheus text from another route`).toBe(true);
    } else if (type.startsWith('text/html') || type.startsWith('text/javascript')) {
      expect(request.target.startsWith('/ui/'), `${what}: a console file from another route`).toBe(true);
    } else {
      expect(() => JSON.parse(res.body) as unknown, what).not.toThrow();
    }
  }
  outcomes.add(
    res.status >= 400 && request.method !== 'HEAD'
      ? `${res.status} ${String(JSON.parse(res.body).error.details[0].reason)}`
      : String(res.status),
  );
  if (res.streaming || res.headers.connection === 'close') {
    connection.close();
    connection = undefined;
  }
  return res;
}

function v1Path(userId: string, configName: string): string {
  return `/v1/users/${encodeComponent(userId)}/configs/${encodeComponent(configName)}`;
}

describe('REST fuzz', () => {
  it(
    'hostile bodies on the write routes: refused with the JSON error body, seeded configs untouched',
    async () => {
      const target = fc.oneof(
        fc.record({
          seededKey: fc.constantFrom(...seeded),
          configName: fc.constant(''),
          body: bodyCase(MAX_BODY, false),
          casAnyway: fc.boolean(),
        }),
        fc.record({
          seededKey: fc.constant(undefined),
          configName: validName,
          body: bodyCase(MAX_BODY, false),
          casAnyway: fc.boolean(),
        }),
      );
      const property = fc.asyncProperty(
        target,
        fc.boolean(),
        async ({ seededKey, configName, body, casAnyway }, legacy) => {
          const key = seededKey ?? { userId: 'fz-bodies', configName };
          // A body cfgd would accept goes to a seeded config only with a version it is not at.
          const cas = casAnyway || (seededKey !== undefined && !body.refused);
          const request: Request = legacy
            ? {
                method: 'POST',
                target: `/values/${encodeComponent(key.userId)}/${encodeComponent(key.configName)}`,
                headers: cas ? { 'if-match': '"999"' } : {},
                body,
              }
            : {
                method: 'PUT',
                target: `${v1Path(key.userId, key.configName)}${cas ? '?expected_version=999' : ''}`,
                body,
              };
          const res = await send(request);
          if (body.refused || cas)
            expect(res.status, `${body.kind}: ${res.body.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
        },
      );
      await fc.assert(property, { seed: settings.seed, numRuns: settings.runs });
    },
    settings.timeoutMs,
  );

  it(
    'hostile names and query strings on every route: 4xx or an answer, never a 5xx',
    async () => {
      const property = fc.asyncProperty(
        fc.constantFrom(...routes),
        hostileText,
        hostileText,
        queryString,
        fc.boolean(),
        fc.boolean(),
        async (route, userId, configName, query, head, loose) => {
          // The seeded configs' user is kept out of reach of requests that may be valid.
          const user = userId === 'seed-keeper' ? 'fz' : userId;
          const values = {
            user_id: loose ? looseEncode(user) : encodeComponent(user),
            config_name: loose ? looseEncode(configName) : encodeComponent(configName),
          };
          const path = fillTemplate(route.template, values, true);
          const target = query === '' ? path : `${path}?${query}`;
          const method = route.method === 'GET' && head ? 'HEAD' : route.method;
          const body: BodyCase | undefined =
            route.method === 'GET'
              ? undefined
              : {
                  kind: 'values',
                  body: Buffer.from('{"fz": 1}'),
                  contentType: 'application/json',
                  chunks: undefined,
                  refused: false,
                };
          await send({ method, target, body });
        },
      );
      await fc.assert(property, { seed: settings.seed, numRuns: settings.runs });
    },
    settings.timeoutMs,
  );

  it('every method on every route: 405 with Allow where the route does not take it', async () => {
    const methods = [
      'GET',
      'HEAD',
      'POST',
      'PUT',
      'PATCH',
      'DELETE',
      'OPTIONS',
      'TRACE',
      'CONNECT',
      'PROPFIND',
      'SEARCH',
      'PURGE',
      'LINK',
      'MKCOL',
      'QUERY',
    ];
    const templates = [...new Set(routes.map((r) => r.template))];
    const keys = [
      seeded[0]!,
      { userId: 'fz-methods', configName: 'm' },
      { userId: '__proto__', configName: 'constructor' },
    ];
    for (const template of templates) {
      const served = routes.filter((r) => r.template === template).map((r) => r.method);
      const allowed = new Set([...served, ...(served.includes('GET') ? ['HEAD'] : [])]);
      for (const key of keys) {
        const path = fillTemplate(template, { user_id: key.userId, config_name: key.configName });
        for (const method of methods) {
          // A seeded config is written to only with a version it is not at: DELETE and :undelete,
          // for one, need no body to succeed.
          const guard = key === seeded[0] && method !== 'GET' && method !== 'HEAD';
          const res = await send({ method, target: path, ...(guard ? { headers: { 'if-match': '"999"' } } : {}) });
          if (!allowed.has(method)) {
            expect(res.status, `${method} ${path}`).toBe(405);
            expect(res.headers.allow?.split(', ').sort(), `${method} ${path}`).toEqual([...allowed].sort());
          }
        }
      }
      // Methods Node's parser does not know: refused before routing, with the JSON body.
      for (const method of ['FOO', 'get', 'G=T']) {
        const res = await send({ method, target: fillTemplate(template, { user_id: 'fz-methods', config_name: 'm' }) });
        expect(res.status, method).toBe(400);
      }
    }
  });

  it('afterwards: the server answers, logged no error, holds no stream, and the seeded configs are byte-for-byte unchanged', async () => {
    connection?.close();
    connection = undefined;
    const status = await send({ method: 'GET', target: '/v1/status' });
    expect(status.status).toBe(200);
    await target.expectUntouched();
  });
});
