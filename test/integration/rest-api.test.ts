import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegistry } from '../../src/transport/rest/gateway.js';
import { http, parseRawResponse, rawHttp, sendJson } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { getOption } from '@bufbuild/protobuf';

let server: TestServer;
let port: number;
const MAX_BODY = 64 * 1024;

beforeAll(async () => {
  server = await startTestServer({ maxBodyBytes: MAX_BODY });
  port = server.cfgd.httpPort;
});
afterAll(async () => server.stop());

function expectError(res: { status: number; json: any }, status: number, grpcStatus: string, reason?: string): void {
  expect(res.status).toBe(status);
  expect(res.json?.error).toMatchObject({ code: status, status: grpcStatus });
  expect(typeof res.json.error.message).toBe('string');
  expect(res.json.error.message.length).toBeGreaterThan(0);
  expect(res.json.error.details[0]['@type']).toBe('type.googleapis.com/google.rpc.ErrorInfo');
  if (reason !== undefined) expect(res.json.error.details[0].reason).toBe(reason);
}

describe('routes from the contract', () => {
  it('serves every google.api.http binding of ConfigService', async () => {
    const registry = loadRegistry();
    const service = registry.getService('cfgd.v1.ConfigService')!;
    const httpRule = registry.getExtension('google.api.http')!;
    await sendJson(port, 'PUT', '/v1/users/routes/configs/c', { a: 1 });
    const reached: string[] = [];
    for (const method of service.methods) {
      const rule: unknown = getOption(method, httpRule);
      const { pattern, body } = rule as { pattern: { case: string; value: string }; body: string };
      const path = pattern.value.replace('{user_id}', 'routes').replace('{config_name}', 'c');
      const verb = pattern.case.toUpperCase();
      const controller = new AbortController();
      // `body: "*"` takes the whole request message, `body: "values"` (or "patch") the values.
      const wholeBodies: Record<string, string> = {
        SetSchema: '{"schema": {"type": "object"}}',
        Rollback: '{"to_version": "1"}',
        Undelete: '{}',
      };
      const sent = body === '*' ? (wholeBodies[method.name] ?? '{}') : '{"a": 2}';
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        method: verb,
        signal: controller.signal,
        ...(body === '' ? {} : { body: sent, headers: { 'content-type': 'application/json' } }),
      });
      expect(res.status, `${verb} ${path}`).toBe(200);
      if (method.methodKind === 'server_streaming') {
        expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      } else if (method.output.typeName === 'google.api.HttpBody') {
        // RenderConfig answers the file itself: JSON when no format is asked for.
        expect(res.headers.get('content-type')).toBe('application/json');
      } else {
        expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      }
      controller.abort();
      reached.push(method.name);
    }
    expect(reached).toEqual(service.methods.map((m) => m.name));
    expect(reached).toEqual(expect.arrayContaining(['Put', 'Get', 'History', 'Watch', 'ListConfigs', 'Delete']));
  });

  it('maps path, body and query to proto3 JSON with proto field names', async () => {
    const put = await sendJson(port, 'PUT', '/v1/users/u1/configs/json?expected_version=0', { a: { b: [1, null] } });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({
      config: {
        name: 'users/u1/configs/json',
        user_id: 'u1',
        config_name: 'json',
        version: '1',
        values: { a: { b: [1, null] } },
      },
      audit_entry: { version: '1', author: 'anonymous', changes: [{ action: 'CHANGE_ACTION_ADDED', key: 'a' }] },
      changed: true,
    });
    expect(put.json.config.update_time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    const unchanged = await sendJson(port, 'PUT', '/v1/users/u1/configs/json', { a: { b: [1, null] } });
    expect(unchanged.json.changed).toBe(false);
    await sendJson(port, 'PUT', '/v1/users/u1/configs/json', { a: 2 });
    const old = await http(port, 'GET', '/v1/users/u1/configs/json?version=1');
    expect(old.json.config.values).toEqual({ a: { b: [1, null] } });
    expect(old.json.latest_version).toBe('2');
    const page = await http(port, 'GET', '/v1/users/u1/configs/json/history?page_size=1&start_version=2');
    expect(page.json.entries.map((e: any) => e.version)).toEqual(['2']);
    expect(page.json.entries[0].changes[0]).toEqual({
      action: 'CHANGE_ACTION_UPDATED',
      key: 'a',
      value: 2,
      old_value: { b: [1, null] },
    });
  });

  it('answers HEAD like GET without a body', async () => {
    await sendJson(port, 'PUT', '/v1/users/u1/configs/head', { a: 1 });
    const res = await http(port, 'HEAD', '/v1/users/u1/configs/head');
    expect(res.status).toBe(200);
    expect(res.headers.etag).toBe('"1"');
    expect(res.text).toBe('');
  });
});

describe('errors', () => {
  const key = '/v1/users/err/configs/target';
  const legacy = '/values/err/target';

  async function snapshot(): Promise<unknown> {
    const history = await http(port, 'GET', `${key}/history?page_size=1000`);
    const latest = await http(port, 'GET', key);
    return { history: history.json, latest: latest.json };
  }

  it('answers every bad request with the JSON error body and changes nothing', async () => {
    await sendJson(port, 'PUT', key, { a: 1 });
    await sendJson(port, 'PUT', key, { a: 2 });
    const before = await snapshot();
    const json = { 'content-type': 'application/json' };

    for (const path of [key, legacy]) {
      const method = path === key ? 'PUT' : 'POST';
      // Malformed JSON.
      expectError(
        await http(port, method, path, { body: '{"a": ', headers: json }),
        400,
        'INVALID_ARGUMENT',
        'MALFORMED_JSON',
      );
      // Missing and wrong Content-Type on a body.
      expectError(
        await http(port, method, path, { body: '{"a": 9}' }),
        415,
        'INVALID_ARGUMENT',
        'CONTENT_TYPE_MISSING',
      );
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']) {
        const res = await http(port, method, path, { body: '{"a": 9}', headers: { 'content-type': type } });
        expectError(res, 415, 'INVALID_ARGUMENT', 'CONTENT_TYPE_UNSUPPORTED');
      }
      // Bodies that are not objects.
      for (const body of ['[1, 2]', '"text"', '42', 'null', 'true']) {
        const res = await http(port, method, path, { body, headers: json });
        expectError(res, 400, 'INVALID_ARGUMENT', 'VALUES_NOT_OBJECT');
        expect(res.json.error.message).toMatch(/^values: must be a JSON object, got /);
      }
      // Compare-and-set conflict.
      const conflict = await sendJson(port, method, path, { a: 3 }, { 'if-match': '"1"' });
      expectError(conflict, 409, 'ABORTED', 'VERSION_MISMATCH');
      expect(conflict.json.error.details[0].metadata).toEqual({ expected_version: '1', current_version: '2' });
    }
    expectError(await sendJson(port, 'PUT', `${key}?expected_version=7`, { a: 3 }), 409, 'ABORTED', 'VERSION_MISMATCH');
    expectError(
      await sendJson(port, 'PUT', key, { a: 3 }, { 'if-match': 'garbage' }),
      400,
      'INVALID_ARGUMENT',
      'IF_MATCH_INVALID',
    );

    // Invalid names, on both APIs.
    for (const path of [
      '/v1/users/bad%20name/configs/x',
      '/values/bad%20name/x',
      '/v1/users/ok/configs/' + 'x'.repeat(129),
    ]) {
      const res = path.startsWith('/values')
        ? await sendJson(port, 'POST', path, { a: 1 })
        : await http(port, 'GET', path);
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(res.json.error.details[1]['@type']).toBe('type.googleapis.com/google.rpc.BadRequest');
    }
    // Too deep and too large values.
    let deep: Record<string, unknown> = {};
    for (let i = 1; i < 33; i++) deep = { d: deep };
    expectError(await sendJson(port, 'PUT', key, deep), 400, 'INVALID_ARGUMENT', 'VALUES_TOO_DEEP');
    expectError(await sendJson(port, 'POST', legacy, deep), 400, 'INVALID_ARGUMENT', 'VALUES_TOO_DEEP');
    expectError(await sendJson(port, 'POST', legacy, { big: 'x'.repeat(2 * 1024 * 1024) }), 413, 'RESOURCE_EXHAUSTED');
    // Bad query parameters.
    expectError(await http(port, 'GET', `${key}?version=-1`), 400, 'INVALID_ARGUMENT', 'VERSION_INVALID');
    expectError(await http(port, 'GET', `${key}?version=abc`), 400, 'INVALID_ARGUMENT', 'REQUEST_INVALID');
    expectError(await http(port, 'GET', `${key}?colour=blue`), 400, 'INVALID_ARGUMENT', 'QUERY_PARAMETER_UNKNOWN');
    expectError(
      await http(port, 'GET', `${key}/history?page_token=nope`),
      400,
      'INVALID_ARGUMENT',
      'PAGE_TOKEN_INVALID',
    );
    // Unknown config, version, route; wrong method.
    expectError(await http(port, 'GET', '/v1/users/err/configs/nothing'), 404, 'NOT_FOUND', 'CONFIG_NOT_FOUND');
    expectError(await http(port, 'GET', `${key}?version=99`), 404, 'NOT_FOUND', 'VERSION_NOT_FOUND');
    expectError(await http(port, 'GET', '/v2/elsewhere'), 404, 'NOT_FOUND', 'ROUTE_NOT_FOUND');
    expectError(await http(port, 'GET', '/values/err'), 404, 'NOT_FOUND', 'ROUTE_NOT_FOUND');
    const wrongMethod = await http(port, 'POST', key, { body: '{}', headers: json });
    expectError(wrongMethod, 405, 'UNIMPLEMENTED', 'METHOD_NOT_ALLOWED');
    expect(wrongMethod.headers.allow).toBe('PUT, GET, PATCH, DELETE, HEAD');
    const legacyMethod = await http(port, 'PUT', legacy, { body: '{}', headers: json });
    expect(legacyMethod.status).toBe(405);
    expect(legacyMethod.headers.allow).toBe('POST, GET, HEAD');

    // A body over the limit.
    const big = await http(port, 'PUT', key, { body: JSON.stringify({ big: 'x'.repeat(MAX_BODY) }), headers: json });
    expectError(big, 413, 'RESOURCE_EXHAUSTED', 'BODY_TOO_LARGE');

    expect(await snapshot()).toEqual(before);
    expect((await sendJson(port, 'PUT', key, { a: 4 })).json.config.version).toBe('3');
  });

  it('answers an oversized body with 413 and closes the connection instead of waiting for the rest', async () => {
    const declared = [
      `PUT /v1/users/err/configs/big HTTP/1.1`,
      `Host: 127.0.0.1`,
      'Content-Type: application/json',
      `Content-Length: ${10 * MAX_BODY}`,
      '',
      '{"big": "' + 'x'.repeat(1000),
    ].join('\r\n');
    const early = await rawHttp(port, declared, 3000);
    expect(early.closed).toBe(true);
    expect(parseRawResponse(early.response).status).toBe(413);

    const chunked = [
      `POST /values/err/big HTTP/1.1`,
      `Host: 127.0.0.1`,
      'Content-Type: application/json',
      'Transfer-Encoding: chunked',
      '',
      `${(2 * MAX_BODY).toString(16)}\r\n${'x'.repeat(2 * MAX_BODY)}\r\n`,
    ].join('\r\n');
    const streamed = await rawHttp(port, chunked, 3000);
    expect(streamed.closed).toBe(true);
    const parsed = parseRawResponse(streamed.response);
    expect(parsed.status).toBe(413);
    expect(JSON.parse(parsed.body).error.status).toBe('RESOURCE_EXHAUSTED');
    expect((await http(port, 'GET', '/values/err/big')).status).toBe(404);
  });

  it('answers a request line it cannot parse with 400', async () => {
    const { response } = await rawHttp(port, 'NOT HTTP AT ALL\r\n\r\n', 3000);
    expect(parseRawResponse(response).status).toBe(400);
    expect((await http(port, 'GET', '/v1/users/err/configs/target')).status).toBe(200);
  });
});

describe('conditional requests', () => {
  it('GET has an ETag from the version; If-None-Match gives 304; If-Match is compare-and-set', async () => {
    const path = '/v1/users/cond/configs/c';
    await sendJson(port, 'PUT', path, { a: 1 });
    const first = await http(port, 'GET', path);
    expect(first.headers.etag).toBe('"1"');
    const notModified = await http(port, 'GET', path, { headers: { 'if-none-match': '"1"' } });
    expect(notModified.status).toBe(304);
    expect(notModified.text).toBe('');
    expect(notModified.headers.etag).toBe('"1"');
    const ok = await sendJson(port, 'PUT', path, { a: 2 }, { 'if-match': '"1"' });
    expect(ok.status).toBe(200);
    expect(ok.headers.etag).toBe('"2"');
    expect((await http(port, 'GET', path, { headers: { 'if-none-match': '"1"' } })).status).toBe(200);
    expect((await sendJson(port, 'PUT', path, { a: 3 }, { 'if-match': '"1"' })).status).toBe(409);
    expect((await sendJson(port, 'PUT', path, { a: 3 }, { 'if-match': 'W/"2"' })).status).toBe(200);

    const legacy = '/values/cond/legacy';
    const created = await sendJson(port, 'POST', legacy, { a: 1 }, { 'if-match': '"0"' });
    expect(created.status).toBe(200);
    expect(created.headers.etag).toBe('"1"');
    expect((await http(port, 'GET', legacy, { headers: { 'if-none-match': '"1"' } })).status).toBe(304);
    expect((await sendJson(port, 'POST', legacy, { a: 2 }, { 'if-match': '"0"' })).status).toBe(409);
    expect((await http(port, 'GET', legacy)).json.version).toBe(1);
  });
});
