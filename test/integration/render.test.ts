/**
 * RenderConfig over a real server: a config's values as a JSON, YAML, dotenv
 * or Java properties file, the same bytes over REST (a curl-style GET answered
 * with the file itself) and gRPC (a google.api.HttpBody), each read back by a
 * reader that is not cfgd's; ETags and 304; older versions; the errors; and,
 * with authentication on, `read` checked before the config is looked up.
 */
import { credentials as grpcCredentials, status as GrpcStatus } from '@grpc/grpc-js';
import { parse as dotenvParse } from 'dotenv';
import { parse as yamlParse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigServiceClient, RenderFormat, type RenderConfigRequest } from '../../generated/cfgd/v1/config_service.js';
import type { HttpBody } from '../../generated/google/api/httpbody.js';
import type { JsonObject } from '../../src/domain/index.js';
import { DEFAULTS } from '../../src/settings/settings.js';
import { loadRegistry } from '../../src/transport/rest/gateway.js';
import { AuthClient, bearer, grantsOn, grpcOutcome, TEST_ADMIN_TOKEN, unary } from '../helpers/auth.js';
import { call, rejection, type TestClient } from '../helpers/client.js';
import { http, sendJson, type HttpResponse } from '../helpers/http.js';
import { ownJson } from '../helpers/odd-json.js';
import { dotenvExact, envExpected, propertiesExpected, propertiesRead, shRead } from '../helpers/render-readers.js';
import { grpcRefusal, restRefusal } from '../helpers/schemas.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** Values every format can hold: shell-name keys, no two leaves of one flattened name; awkward text. */
const VALUES: JsonObject = {
  DB_HOST: 'db.local',
  DB_PORT: 5432,
  DEBUG: false,
  GREETING: 'it\'s "$HOME" `x` \\ #1 = é 😀\nline two',
  MOTD: 'say "hi" to $USER # not a comment',
  EMPTY: '',
  NOTHING: null,
  OCTAL: '017',
  NORWAY: 'no',
  NESTED: { hosts: ['a', 'b'], tls: { on: true, 'x.y': 'dotted' } },
};

const FORMATS = [
  { name: 'json', enumName: 'RENDER_FORMAT_JSON', value: RenderFormat.RENDER_FORMAT_JSON, type: 'application/json' },
  { name: 'yaml', enumName: 'RENDER_FORMAT_YAML', value: RenderFormat.RENDER_FORMAT_YAML, type: 'application/yaml' },
  {
    name: 'env',
    enumName: 'RENDER_FORMAT_ENV',
    value: RenderFormat.RENDER_FORMAT_ENV,
    type: 'text/plain; charset=utf-8',
  },
  {
    name: 'properties',
    enumName: 'RENDER_FORMAT_PROPERTIES',
    value: RenderFormat.RENDER_FORMAT_PROPERTIES,
    type: 'text/x-java-properties; charset=ISO-8859-1',
  },
] as const;

/** Reads a rendered file back with a reader that is not cfgd's and checks it holds `values`. */
function expectReadsBack(format: (typeof FORMATS)[number]['name'], text: string, values: JsonObject): void {
  switch (format) {
    case 'json':
      expect(ownJson(JSON.parse(text))).toBe(ownJson(values));
      break;
    case 'yaml':
      expect(ownJson(yamlParse(text))).toBe(ownJson(values));
      expect(ownJson(yamlParse(text, { version: '1.1' }))).toBe(ownJson(values));
      break;
    case 'env': {
      const expected = envExpected(values);
      expect(shRead(text, Object.keys(expected))).toEqual(expected);
      const dotenv = dotenvParse(text);
      for (const [key, value] of Object.entries(expected)) if (dotenvExact(value)) expect(dotenv[key]).toBe(value);
      break;
    }
    case 'properties':
      expect(propertiesRead(text)).toEqual(propertiesExpected(values));
      break;
  }
}

let server: TestServer;
let client: TestClient;
const port = (): number => server.cfgd.httpPort;

function render(request: Partial<RenderConfigRequest>): Promise<HttpBody> {
  return call(client.raw.renderConfig.bind(client.raw), {
    userId: 'r',
    configName: 'app',
    format: RenderFormat.RENDER_FORMAT_UNSPECIFIED,
    version: 0,
    ...request,
  });
}

beforeAll(async () => {
  server = await startTestServer();
  client = server.client();
  for (const values of [{ first: 1 }, VALUES]) {
    const res = await sendJson(port(), 'PUT', '/v1/users/r/configs/app', values);
    if (res.status !== 200) throw new Error(`seeding failed: ${res.text}`);
  }
});

afterAll(async () => server.stop());

describe('RenderConfig', () => {
  for (const format of FORMATS) {
    it(`renders ${format.name}: the same file over REST and gRPC, read back to the stored values`, async () => {
      const rest = await http(port(), 'GET', `/v1/users/r/configs/app:render?format=${format.name}`);
      expect(rest.status, rest.text).toBe(200);
      expect(rest.headers['content-type']).toBe(format.type);
      expect(rest.headers['content-length']).toBe(String(Buffer.byteLength(rest.text)));
      expect(rest.headers['x-content-type-options']).toBe('nosniff');
      expect(rest.headers.etag).toBe('"2"');
      expectReadsBack(format.name, rest.text, VALUES);

      // The enum's own name in the query, as grpc-gateway takes it, gives the same file.
      const byName = await http(port(), 'GET', `/v1/users/r/configs/app:render?format=${format.enumName}`);
      expect(byName.text).toBe(rest.text);

      const grpc = await render({ format: format.value });
      expect(grpc.contentType).toBe(format.type);
      expect(grpc.data.toString('utf8')).toBe(rest.text);
    });
  }

  it('renders JSON when no format is given, and answers HEAD with the headers alone', async () => {
    const rest = await http(port(), 'GET', '/v1/users/r/configs/app:render');
    expect(rest.headers['content-type']).toBe('application/json');
    expect(rest.text).toBe(`${JSON.stringify(VALUES, null, 2)}\n`);
    expect((await render({})).data.toString('utf8')).toBe(rest.text);
    const head = await http(port(), 'HEAD', '/v1/users/r/configs/app:render?format=yaml');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
    expect(head.headers['content-type']).toBe('application/yaml');
    expect(head.headers.etag).toBe('"2"');
  });

  it('answers If-None-Match with the current ETag with 304 and no body, and a stale one with the file', async () => {
    const path = '/v1/users/r/configs/app:render?format=env';
    const first = await http(port(), 'GET', path);
    const etag = String(first.headers.etag);
    const same = await http(port(), 'GET', path, { headers: { 'if-none-match': etag } });
    expect(same.status).toBe(304);
    expect(same.text).toBe('');
    expect(same.headers.etag).toBe(etag);
    expect((await http(port(), 'GET', path, { headers: { 'if-none-match': `"1", ${etag}` } })).status).toBe(304);
    expect((await http(port(), 'GET', path, { headers: { 'if-none-match': '*' } })).status).toBe(304);
    const stale = await http(port(), 'GET', path, { headers: { 'if-none-match': '"1"' } });
    expect(stale.status).toBe(200);
    expect(stale.text).toBe(first.text);
  });

  it('renders an older version with version=N, its ETag that version', async () => {
    const rest = await http(port(), 'GET', '/v1/users/r/configs/app:render?format=properties&version=1');
    expect(rest.status).toBe(200);
    expect(rest.text).toBe('first=1\n');
    expect(rest.headers.etag).toBe('"1"');
    const grpc = await render({ format: RenderFormat.RENDER_FORMAT_YAML, version: 1 });
    expect(grpc.data.toString('utf8')).toBe('first: 1\n');
    const missing = restRefusal(await http(port(), 'GET', '/v1/users/r/configs/app:render?version=9'));
    expect(missing).toMatchObject({ httpStatus: 404, status: 'NOT_FOUND', reason: 'VERSION_NOT_FOUND' });
  });

  it('refuses a format it does not know: 400 with the JSON error body, INVALID_ARGUMENT over gRPC', async () => {
    for (const query of ['format=xml', 'format=YAML', 'format=2', 'format=unspecified', 'format=']) {
      const res = await http(port(), 'GET', `/v1/users/r/configs/app:render?${query}`);
      const refusal = restRefusal(res);
      expect(refusal, query).toMatchObject({ httpStatus: 400, status: 'INVALID_ARGUMENT', reason: 'REQUEST_INVALID' });
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(refusal.message).toContain('RENDER_FORMAT_YAML');
      expect(refusal.message).toContain('yaml');
    }
    const grpc = grpcRefusal(await rejection(render({ format: 99 as RenderFormat })));
    expect(grpc).toMatchObject({ status: 'INVALID_ARGUMENT', reason: 'FORMAT_INVALID', metadata: { field: 'format' } });
  });

  it('takes short enum names in the query for every enum, not only the format (view=full on ListConfigs)', async () => {
    const full = await http(port(), 'GET', '/v1/users/r/configs?view=full');
    expect(full.status).toBe(200);
    expect(full.text).toBe((await http(port(), 'GET', '/v1/users/r/configs?view=CONFIG_VIEW_FULL')).text);
    expect(full.json.configs[0].values).toEqual(VALUES);
  });

  it('refuses values the format cannot hold with FAILED_PRECONDITION naming the key', async () => {
    await sendJson(port(), 'PUT', '/v1/users/r/configs/dashed', { GOOD: 1, 'my-key': 'x' });
    const rest = restRefusal(await http(port(), 'GET', '/v1/users/r/configs/dashed:render?format=env'));
    expect(rest).toMatchObject({
      httpStatus: 400,
      status: 'FAILED_PRECONDITION',
      reason: 'RENDER_UNREPRESENTABLE',
      metadata: { format: 'env', key: 'my-key' },
    });
    expect(rest.message).toContain('"my-key"');
    const grpc = await rejection(render({ configName: 'dashed', format: RenderFormat.RENDER_FORMAT_ENV }));
    expect(grpc.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(grpcRefusal(grpc)).toMatchObject({ reason: 'RENDER_UNREPRESENTABLE', metadata: { key: 'my-key' } });
    // The same values are fine as a file of another format.
    expect((await http(port(), 'GET', '/v1/users/r/configs/dashed:render?format=properties')).text).toBe(
      'GOOD=1\nmy-key=x\n',
    );

    await sendJson(port(), 'PUT', '/v1/users/r/configs/clash', { 'a.b': 1, a: { b: 2 } });
    const clash = restRefusal(await http(port(), 'GET', '/v1/users/r/configs/clash:render?format=properties'));
    expect(clash).toMatchObject({ httpStatus: 400, reason: 'RENDER_UNREPRESENTABLE', metadata: { key: 'a.b' } });
  });

  it('answers a missing config with 404 CONFIG_NOT_FOUND, and a deleted one with CONFIG_DELETED', async () => {
    const rest = restRefusal(await http(port(), 'GET', '/v1/users/r/configs/nope:render?format=yaml'));
    expect(rest).toMatchObject({ httpStatus: 404, status: 'NOT_FOUND', reason: 'CONFIG_NOT_FOUND' });
    const grpc = grpcRefusal(await rejection(render({ configName: 'nope' })));
    expect(grpc).toMatchObject({ status: 'NOT_FOUND', reason: 'CONFIG_NOT_FOUND' });
    await sendJson(port(), 'PUT', '/v1/users/r/configs/gone', { a: 1 });
    await http(port(), 'DELETE', '/v1/users/r/configs/gone');
    const deleted = restRefusal(await http(port(), 'GET', '/v1/users/r/configs/gone:render'));
    expect(deleted).toMatchObject({ httpStatus: 404, reason: 'CONFIG_DELETED' });
  });

  it('is the one ConfigService RPC whose response is not <Rpc>Response (the buf.yaml exception)', () => {
    const service = loadRegistry().getService('cfgd.v1.ConfigService')!;
    const odd = service.methods
      .filter((method) => method.output.typeName !== `cfgd.v1.${method.name}Response`)
      .map((method) => `${method.name} → ${method.output.typeName}`);
    expect(odd).toEqual(['RenderConfig → google.api.HttpBody']);
  });
});

describe('RenderConfig with authentication on', () => {
  let authServer: TestServer;
  let admin: AuthClient;
  let config: ConfigServiceClient;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    authServer = await startTestServer({ auth: { ...DEFAULTS.auth, mode: 'on', adminToken: TEST_ADMIN_TOKEN } });
    admin = new AuthClient(authServer.cfgd.grpcPort, bearer(TEST_ADMIN_TOKEN));
    config = new ConfigServiceClient(`127.0.0.1:${authServer.cfgd.grpcPort}`, grpcCredentials.createInsecure());
    const res = await sendJson(authServer.cfgd.httpPort, 'PUT', '/v1/users/alice/configs/app', VALUES, {
      authorization: bearer(TEST_ADMIN_TOKEN),
    });
    if (res.status !== 200) throw new Error(`seeding failed: ${res.text}`);
    for (const [name, grants] of [
      ['reader', grantsOn('alice', 'read')],
      ['watcher', grantsOn('alice', 'watch', 'write')],
      ['bob', grantsOn('bob', 'read', 'write', 'watch', 'admin')],
    ] as const) {
      tokens[name] = bearer((await admin.createToken({ name, grants: [...grants] })).secret);
    }
  });

  afterAll(async () => {
    config.close();
    admin.close();
    await authServer.stop();
  });

  const restAs = (authorization: string | undefined, name: string): Promise<HttpResponse> =>
    http(authServer.cfgd.httpPort, 'GET', `/v1/users/alice/configs/${name}:render?format=env`, {
      headers: authorization === undefined ? {} : { authorization },
    });
  const grpcAs = (authorization: string | undefined, name: string): Promise<HttpBody> =>
    unary<RenderConfigRequest, HttpBody>(
      config.renderConfig.bind(config),
      { userId: 'alice', configName: name, format: RenderFormat.RENDER_FORMAT_ENV, version: 0 },
      authorization,
    );

  it('renders for a token with read', async () => {
    const rest = await restAs(tokens.reader, 'app');
    expect(rest.status).toBe(200);
    expectReadsBack('env', rest.text, VALUES);
    expect((await grpcAs(tokens.reader, 'app')).data.toString('utf8')).toBe(rest.text);
    expect(restRefusal(await restAs(tokens.reader, 'missing')).reason).toBe('CONFIG_NOT_FOUND');
  });

  it('refuses a token without read with PERMISSION_DENIED, the same whether or not the config exists', async () => {
    for (const name of ['watcher', 'bob']) {
      const answers = [];
      for (const configName of ['app', 'missing']) {
        const rest = restRefusal(await restAs(tokens[name], configName));
        expect(rest, name).toMatchObject({ httpStatus: 403, status: 'PERMISSION_DENIED', reason: 'PERMISSION_DENIED' });
        const grpc = grpcOutcome(await rejection(grpcAs(tokens[name], configName)));
        expect(grpc, name).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'PERMISSION_DENIED' });
        answers.push(JSON.stringify([rest.message, rest.metadata, grpc.message]).replaceAll(configName, 'NAME'));
      }
      expect(answers[0], name).toBe(answers[1]);
    }
    expect(restRefusal(await restAs(undefined, 'app'))).toMatchObject({ httpStatus: 401, reason: 'TOKEN_MISSING' });
  });
});
