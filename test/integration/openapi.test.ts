/**
 * GET /v1/openapi.json over a real server with authentication on: served
 * without a credential, a valid OpenAPI document, and its operations are
 * exactly the /v1 routes the server answers (and no other route).
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/settings/settings.js';
import { TEST_ADMIN_TOKEN } from '../helpers/auth.js';
import { http } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ auth: { ...DEFAULTS.auth, mode: 'on', adminToken: TEST_ADMIN_TOKEN } });
});

afterAll(async () => {
  await server.stop();
});

/** `METHOD /path` with each `{field=pattern}` variable written as OpenAPI writes it, `{field}`. */
const operationOf = (method: string, template: string): string =>
  `${method.toUpperCase()} ${template.replace(/\{([^}=]+)=[^}]*\}/g, '{$1}')}`;

describe('GET /v1/openapi.json', () => {
  it('is served without a credential, as JSON, and is a valid OpenAPI 3.1 document', async () => {
    const response = await http(server.cfgd.httpPort, 'GET', '/v1/openapi.json');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(response.json.openapi).toBe('3.1.0');
    const result = await new Validator().validate(response.json as Parameters<Validator['validate']>[0]);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('describes exactly the /v1 routes the server answers, by method and path', async () => {
    const document = (await http(server.cfgd.httpPort, 'GET', '/v1/openapi.json')).json as {
      paths: Record<string, Record<string, unknown>>;
    };
    const described = Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((key) => ['get', 'put', 'post', 'delete', 'patch'].includes(key))
        .map((method) => operationOf(method, path)),
    );
    // The gateway's routes: the RPCs' bindings, not the document itself or the legacy and operational routes.
    const served = server.cfgd.routes
      .filter((route) => route.path.startsWith('/v1/') && route.operation.startsWith('cfgd.v1.'))
      .map((route) => operationOf(route.method, route.path));
    expect(served.length).toBeGreaterThan(20);
    expect(new Set(described).size).toBe(described.length);
    expect([...described].sort()).toEqual([...served].sort());
    // Every route under /v1 the server answers is in it, but the document itself.
    const others = server.cfgd.routes.filter(
      (route) => route.path.startsWith('/v1/') && !route.operation.startsWith('cfgd.v1.'),
    );
    expect(others.map((route) => `${route.method} ${route.path}`)).toEqual(['GET /v1/openapi.json']);
  });
});
