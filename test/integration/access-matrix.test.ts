/**
 * Every RPC and every REST route (the legacy /values routes, SSE config and
 * user watches included) against every kind of credential: each gets the
 * expected code and reason, rejected writes change nothing, and nothing a
 * refused caller gets back says anything about the config it asked for.
 */
import { randomBytes } from 'node:crypto';
import { request, type IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  loadPackageDefinition,
  type ChannelCredentials,
  type Client as GrpcClient,
  type ClientDuplexStream,
  type ClientReadableStream,
  type Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProto } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthServiceClient } from '../../generated/cfgd/v1/auth_service.js';
import {
  ConfigServiceClient,
  ConfigView,
  RenderFormat,
  type WatchResponse,
} from '../../generated/cfgd/v1/config_service.js';
import { StatusServiceClient } from '../../generated/cfgd/v1/status_service.js';
import { FleetServiceClient } from '../../generated/cfgd/v1/fleet_service.js';
import { credentials as grpcCredentials } from '@grpc/grpc-js';
import { DEFAULTS } from '../../src/settings/settings.js';
import {
  AuthClient,
  authMetadata,
  bearer,
  grantsOn,
  grpcOutcome,
  TEST_ADMIN_TOKEN,
  unary,
  type CallOutcome,
} from '../helpers/auth.js';
import { http, sendJson, type HttpResponse } from '../helpers/http.js';
import { consoleFixture, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The verb an operation needs on alice's configs: `none` needs only a valid credential;
 * `open` needs nothing at all (probes, reflection, the OpenAPI document), whatever the caller sends.
 */
type Verb = 'read' | 'write' | 'watch' | 'admin' | 'none' | 'open';

/** What a credential may do on alice's configs, written out by hand (not computed by cfgd's own code). */
interface Credential {
  readonly header: () => string | undefined;
  /** The reason it is refused before any authorization, or the verbs it holds on users/alice. */
  readonly expect: { readonly unauthenticated: string } | { readonly verbs: readonly Verb[] };
}

/** A config of alice's that exists, with a value no refused caller may ever see. */
const SECRET_VALUE = `s3cr3t-${randomBytes(6).toString('hex')}`;

let server: TestServer;
let admin: AuthClient;
const secrets: Record<string, string> = {};

const CREDENTIALS: Record<string, Credential> = {
  'no credentials': { header: () => undefined, expect: { unauthenticated: 'TOKEN_MISSING' } },
  'a malformed header': { header: () => 'Token abc', expect: { unauthenticated: 'AUTHORIZATION_MALFORMED' } },
  'a scheme without a token': { header: () => 'Bearer', expect: { unauthenticated: 'AUTHORIZATION_MALFORMED' } },
  'an unknown token': {
    header: () => bearer(`cfgd_${randomBytes(32).toString('base64url')}`),
    expect: { unauthenticated: 'TOKEN_INVALID' },
  },
  'a revoked token': { header: () => bearer(secrets.revoked!), expect: { unauthenticated: 'TOKEN_REVOKED' } },
  'an expired token': { header: () => bearer(secrets.expired!), expect: { unauthenticated: 'TOKEN_EXPIRED' } },
  "another tenant's token": { header: () => bearer(secrets.bob!), expect: { verbs: ['none'] } },
  'a read-only token': { header: () => bearer(secrets.reader!), expect: { verbs: ['none', 'read'] } },
  'a watch-only token': { header: () => bearer(secrets.watcher!), expect: { verbs: ['none', 'watch'] } },
  'a valid token': { header: () => bearer(secrets.valid!), expect: { verbs: ['none', 'read', 'write', 'watch'] } },
  'Basic with the token as password': {
    header: () => `Basic ${Buffer.from(`:${secrets.valid!}`).toString('base64')}`,
    expect: { verbs: ['none', 'read', 'write', 'watch'] },
  },
  'an admin token': {
    header: () => bearer(TEST_ADMIN_TOKEN),
    expect: { verbs: ['none', 'read', 'write', 'watch', 'admin'] },
  },
};

/** One operation of the API on one transport. */
interface Operation {
  /** The RPC's full name or the REST route (`METHOD /path/template`) it covers. */
  readonly covers: string;
  readonly verb: Verb;
  /** Makes what the call acts on (a token to revoke …), as the admin, before the state is read. */
  prepare?(): Promise<string>;
  /** Runs it as `authorization` on `config` (an existing or a missing config of alice's). */
  run(authorization: string | undefined, config: string, prepared: string): Promise<CallOutcome>;
  /** What it would change, read as the admin; equal before and after a refused call. */
  state?(): Promise<unknown>;
}

const OK: CallOutcome = { code: 'OK', text: '' };
let counter = 0;

function clients(): {
  config: ConfigServiceClient;
  auth: AuthServiceClient;
  status: StatusServiceClient;
  fleet: FleetServiceClient;
} {
  const address = `127.0.0.1:${server.cfgd.grpcPort}`;
  const insecure = grpcCredentials.createInsecure();
  return {
    config: new ConfigServiceClient(address, insecure),
    auth: new AuthServiceClient(address, insecure),
    status: new StatusServiceClient(address, insecure),
    fleet: new FleetServiceClient(address, insecure),
  };
}

async function grpcCall(action: () => Promise<unknown>): Promise<CallOutcome> {
  try {
    const response = await action();
    return { ...OK, text: JSON.stringify(response) };
  } catch (error: unknown) {
    return grpcOutcome(error as ServiceError);
  }
}

function restOutcome(response: HttpResponse): CallOutcome {
  if (response.status >= 200 && response.status < 300) return { ...OK, text: response.text };
  const error = response.json?.error as { status?: string; message?: string; details?: { reason?: string }[] };
  const challenge = response.headers['www-authenticate'];
  return {
    code: error?.status ?? `HTTP ${response.status}`,
    reason: error?.details?.[0]?.reason,
    message: error?.message,
    text: `${response.status} ${response.text} ${String(challenge)}`,
    ...(response.status === 401 && !String(challenge).startsWith('Bearer') ? { code: 'NO WWW-Authenticate' } : {}),
  };
}

function headers(authorization: string | undefined): Record<string, string> {
  return authorization === undefined ? {} : { authorization };
}

/** Opens a watch stream; OK once its first message arrives, else the status it ended with. */
function grpcWatch(authorization: string | undefined, configName: string): Promise<CallOutcome> {
  const { config } = clients();
  return new Promise((resolve) => {
    const stream = config.watch({ userId: 'alice', configName, knownVersions: {} }, authMetadata(authorization));
    stream.once('data', (message: WatchResponse) => {
      resolve({ ...OK, text: JSON.stringify(message) });
      stream.cancel();
    });
    stream.once('error', (error: ServiceError) => resolve(grpcOutcome(error)));
  });
}

/** Opens an SSE watch; OK once the server answers 200 with an event stream, else its error body. */
function sseWatch(authorization: string | undefined, path: string): Promise<CallOutcome> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.cfgd.httpPort,
        path,
        headers: { accept: 'text/event-stream', ...headers(authorization) },
      },
      (res: IncomingMessage) => {
        if (res.statusCode === 200) {
          resolve({ ...OK, text: String(res.headers['content-type']) });
          req.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve(restOutcome({ status: res.statusCode ?? 0, headers: res.headers, text, json: JSON.parse(text) }));
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const adminHeader = (): string => bearer(TEST_ADMIN_TOKEN);

async function configState(): Promise<unknown> {
  const response = await http(server.cfgd.httpPort, 'GET', '/v1/users/alice/configs/app/history', {
    headers: { authorization: adminHeader() },
  });
  return response.json;
}

/** alice's app: its history and its schema versions (a schema change is a version of the config). */
async function schemaState(): Promise<unknown> {
  const schemas = await http(server.cfgd.httpPort, 'GET', '/v1/users/alice/configs/app/schema/history', {
    headers: { authorization: adminHeader() },
  });
  return { history: await configState(), schemas: schemas.json };
}

/** alice's app's retention, as stored (no read RPC shows it); each allowed call sets another limit. */
let retentionAttempt = 1000;
async function retentionState(): Promise<unknown> {
  return server.cfgd.store.retention({ userId: 'alice', configName: 'app' });
}

/** A schema that alice's values satisfy, different on every call (so a call that got through would show). */
const appSchema = (n: number) => ({
  $comment: `attempt ${n}`,
  type: 'object',
  properties: { n: { type: 'integer' }, secret: { type: 'string' } },
  required: ['n', 'secret'],
});

/** The instances that reported on alice's configs, as stored (a refused report must not show). */
async function instancesState(): Promise<unknown> {
  const since = new Date(0);
  return Promise.all(
    ['app', 'missing'].map((configName) =>
      server.cfgd.store.instances.reports({ userId: 'alice', configName }, since, 1000),
    ),
  );
}

async function tokensState(): Promise<unknown> {
  return (await http(server.cfgd.httpPort, 'GET', '/v1/tokens', { headers: { authorization: adminHeader() } })).json;
}

async function bindingsState(): Promise<unknown> {
  return (await http(server.cfgd.httpPort, 'GET', '/v1/bindings', { headers: { authorization: adminHeader() } })).json;
}

/** A token made for one revocation, and its id. */
async function throwawayToken(): Promise<string> {
  return (await admin.createToken({ name: `throwaway-${++counter}` })).id;
}

/** A binding made for one removal, and its principal. */
async function throwawayBinding(): Promise<string> {
  const principal = `cert:CN=throwaway-${++counter}`;
  await admin.setBinding(principal, grantsOn('alice', 'read'));
  return principal;
}

const put = (n: number) => ({ n, secret: SECRET_VALUE });

function operations(): Operation[] {
  const { config, auth, status, fleet } = clients();
  const grpc: Operation[] = [
    {
      covers: 'cfgd.v1.ConfigService/Put',
      verb: 'write',
      run: (a, c) =>
        grpcCall(() =>
          unary(
            config.put.bind(config),
            { userId: 'alice', configName: c, values: put(++counter), expectedVersion: undefined, validateOnly: false },
            a,
          ),
        ),
      state: configState,
    },
    {
      covers: 'cfgd.v1.ConfigService/Put (validate_only)',
      verb: 'write',
      run: (a, c) =>
        grpcCall(() =>
          unary(
            config.put.bind(config),
            { userId: 'alice', configName: c, values: put(++counter), expectedVersion: undefined, validateOnly: true },
            a,
          ),
        ),
      state: configState,
    },
    {
      covers: 'cfgd.v1.ConfigService/Get',
      verb: 'read',
      run: (a, c) => grpcCall(() => unary(config.get.bind(config), { userId: 'alice', configName: c, version: 0 }, a)),
    },
    {
      covers: 'cfgd.v1.ConfigService/RenderConfig',
      verb: 'read',
      run: (a, c) =>
        grpcCall(() =>
          unary(
            config.renderConfig.bind(config),
            { userId: 'alice', configName: c, format: RenderFormat.RENDER_FORMAT_YAML, version: 0 },
            a,
          ),
        ),
    },
    {
      covers: 'cfgd.v1.ConfigService/History',
      verb: 'read',
      run: (a, c) =>
        grpcCall(() =>
          unary(
            config.history.bind(config),
            { userId: 'alice', configName: c, startVersion: 0, pageSize: 0, pageToken: '' },
            a,
          ),
        ),
    },
    {
      covers: 'cfgd.v1.ConfigService/VerifyHistory',
      verb: 'read',
      run: (a, c) => grpcCall(() => unary(config.verifyHistory.bind(config), { userId: 'alice', configName: c }, a)),
    },
    {
      covers: 'cfgd.v1.ConfigService/Blame',
      verb: 'read',
      run: (a, c) => grpcCall(() => unary(config.blame.bind(config), { userId: 'alice', configName: c }, a)),
    },
    {
      covers: 'cfgd.v1.ConfigService/SetRetention',
      verb: 'admin',
      run: (a, c) =>
        grpcCall(() =>
          unary(
            config.setRetention.bind(config),
            { userId: 'alice', configName: c, maxVersions: retentionAttempt++ },
            a,
          ),
        ),
      state: retentionState,
    },
    { covers: 'cfgd.v1.ConfigService/Watch', verb: 'watch', run: (a, c) => grpcWatch(a, c) },
    { covers: 'cfgd.v1.ConfigService/Watch (user)', verb: 'watch', run: (a) => grpcWatch(a, '') },
    {
      covers: 'cfgd.v1.ConfigService/SetSchema',
      verb: 'admin',
      run: (a, c) =>
        grpcCall(() =>
          unary(
            config.setSchema.bind(config),
            {
              userId: 'alice',
              configName: c,
              schema: appSchema(++counter),
              migrationValues: undefined,
              validateOnly: false,
            },
            a,
          ),
        ),
      state: schemaState,
    },
    {
      covers: 'cfgd.v1.ConfigService/SetSchema (validate_only)',
      verb: 'admin',
      run: (a, c) =>
        grpcCall(() =>
          unary(
            config.setSchema.bind(config),
            {
              userId: 'alice',
              configName: c,
              schema: appSchema(++counter),
              migrationValues: undefined,
              validateOnly: true,
            },
            a,
          ),
        ),
      state: schemaState,
    },
    {
      covers: 'cfgd.v1.ConfigService/SetSchema (with migration values)',
      verb: 'admin',
      run: (a, c) =>
        grpcCall(() =>
          unary(
            config.setSchema.bind(config),
            {
              userId: 'alice',
              configName: c,
              schema: appSchema(++counter),
              migrationValues: put(++counter),
              validateOnly: false,
            },
            a,
          ),
        ),
      state: schemaState,
    },
    {
      covers: 'cfgd.v1.ConfigService/GetSchema',
      verb: 'read',
      run: (a, c) =>
        grpcCall(() => unary(config.getSchema.bind(config), { userId: 'alice', configName: c, schemaVersion: 0 }, a)),
    },
    {
      covers: 'cfgd.v1.ConfigService/SchemaHistory',
      verb: 'read',
      run: (a, c) =>
        grpcCall(() =>
          unary(
            config.schemaHistory.bind(config),
            { userId: 'alice', configName: c, startSchemaVersion: 0, pageSize: 0, pageToken: '' },
            a,
          ),
        ),
    },
    {
      covers: 'cfgd.v1.ConfigService/ListConfigs',
      verb: 'read',
      run: (a) =>
        grpcCall(() =>
          unary(
            config.listConfigs.bind(config),
            {
              userId: 'alice',
              pageSize: 0,
              pageToken: '',
              namePrefix: '',
              showDeleted: true,
              view: ConfigView.CONFIG_VIEW_FULL,
            },
            a,
          ),
        ),
    },
    {
      covers: 'cfgd.v1.ConfigService/Patch',
      verb: 'write',
      run: (a, c) =>
        grpcCall(() =>
          unary(
            config.patch.bind(config),
            { userId: 'alice', configName: c, patch: { n: ++counter }, validateOnly: false },
            a,
          ),
        ),
      state: configState,
    },
    {
      covers: 'cfgd.v1.ConfigService/Patch (validate_only)',
      verb: 'write',
      run: (a, c) =>
        grpcCall(() =>
          unary(
            config.patch.bind(config),
            { userId: 'alice', configName: c, patch: { n: ++counter }, validateOnly: true },
            a,
          ),
        ),
      state: configState,
    },
    {
      // Version 1 holds put(0), which the schema takes.
      covers: 'cfgd.v1.ConfigService/Rollback',
      verb: 'write',
      run: (a, c) =>
        grpcCall(() =>
          unary(config.rollback.bind(config), { userId: 'alice', configName: c, toVersion: 1, validateOnly: false }, a),
        ),
      state: configState,
    },
    {
      covers: 'cfgd.v1.ConfigService/Rollback (validate_only)',
      verb: 'write',
      run: (a, c) =>
        grpcCall(() =>
          unary(config.rollback.bind(config), { userId: 'alice', configName: c, toVersion: 1, validateOnly: true }, a),
        ),
      state: configState,
    },
    // Delete, then Undelete, one after the other: a credential that may write deletes alice's
    // app and restores it before any later row reads it; one that may not does neither.
    {
      covers: 'cfgd.v1.ConfigService/Delete (validate_only)',
      verb: 'write',
      run: (a, c) =>
        grpcCall(() => unary(config.delete.bind(config), { userId: 'alice', configName: c, validateOnly: true }, a)),
      state: configState,
    },
    {
      covers: 'cfgd.v1.ConfigService/Delete',
      verb: 'write',
      run: (a, c) =>
        grpcCall(() => unary(config.delete.bind(config), { userId: 'alice', configName: c, validateOnly: false }, a)),
      state: configState,
    },
    {
      covers: 'cfgd.v1.ConfigService/Undelete (validate_only)',
      verb: 'write',
      run: (a, c) =>
        grpcCall(() => unary(config.undelete.bind(config), { userId: 'alice', configName: c, validateOnly: true }, a)),
      state: configState,
    },
    {
      covers: 'cfgd.v1.ConfigService/Undelete',
      verb: 'write',
      run: (a, c) =>
        grpcCall(() => unary(config.undelete.bind(config), { userId: 'alice', configName: c, validateOnly: false }, a)),
      state: configState,
    },
    {
      covers: 'cfgd.v1.AuthService/CreateToken',
      verb: 'admin',
      run: (a) =>
        grpcCall(() =>
          unary(
            auth.createToken.bind(auth),
            { name: 'made', grants: grantsOn('alice', 'read'), expireTime: undefined, ttl: undefined },
            a,
          ),
        ),
      state: tokensState,
    },
    {
      covers: 'cfgd.v1.AuthService/ListTokens',
      verb: 'admin',
      run: (a) => grpcCall(() => unary(auth.listTokens.bind(auth), {}, a)),
    },
    {
      covers: 'cfgd.v1.AuthService/RevokeToken',
      verb: 'admin',
      prepare: throwawayToken,
      run: (a, _c, id) => grpcCall(() => unary(auth.revokeToken.bind(auth), { id }, a)),
      state: tokensState,
    },
    {
      covers: 'cfgd.v1.AuthService/SetBinding',
      verb: 'admin',
      run: (a) =>
        grpcCall(() =>
          unary(auth.setBinding.bind(auth), { principal: 'jwt:someone', grants: grantsOn('alice', 'write') }, a),
        ),
      state: bindingsState,
    },
    {
      covers: 'cfgd.v1.AuthService/ListBindings',
      verb: 'admin',
      run: (a) => grpcCall(() => unary(auth.listBindings.bind(auth), {}, a)),
    },
    {
      covers: 'cfgd.v1.AuthService/RemoveBinding',
      verb: 'admin',
      prepare: throwawayBinding,
      run: (a, _c, principal) => grpcCall(() => unary(auth.removeBinding.bind(auth), { principal }, a)),
      state: bindingsState,
    },
    {
      covers: 'cfgd.v1.AuthService/WhoAmI',
      verb: 'none',
      run: (a) => grpcCall(() => unary(auth.whoAmI.bind(auth), {}, a)),
    },
    {
      covers: 'cfgd.v1.StatusService/GetStatus',
      verb: 'admin',
      run: (a) => grpcCall(() => unary(status.getStatus.bind(status), {}, a)),
    },
    {
      covers: 'cfgd.v1.FleetService/ReportInstance',
      verb: 'watch',
      run: (a, c) =>
        grpcCall(() =>
          unary(
            fleet.reportInstance.bind(fleet),
            {
              userId: 'alice',
              configName: c,
              instanceId: `grpc-${++counter}`,
              appliedVersion: 0,
              failedVersion: 0,
              error: '',
            },
            a,
          ),
        ),
      state: instancesState,
    },
    {
      covers: 'cfgd.v1.FleetService/ListInstances',
      verb: 'read',
      run: (a, c) => grpcCall(() => unary(fleet.listInstances.bind(fleet), { userId: 'alice', configName: c }, a)),
    },
  ];
  const port = (): number => server.cfgd.httpPort;
  const rest = async (
    method: string,
    path: string,
    authorization: string | undefined,
    body?: unknown,
  ): Promise<CallOutcome> =>
    restOutcome(
      body === undefined
        ? await http(port(), method, path, { headers: headers(authorization) })
        : await sendJson(port(), method, path, body, headers(authorization)),
    );
  const restOps: Operation[] = [
    {
      covers: 'PUT /v1/users/{user_id}/configs/{config_name}',
      verb: 'write',
      run: (a, c) => rest('PUT', `/v1/users/alice/configs/${c}`, a, put(++counter)),
      state: configState,
    },
    {
      covers: 'PUT /v1/users/{user_id}/configs/{config_name} (validate_only)',
      verb: 'write',
      run: (a, c) => rest('PUT', `/v1/users/alice/configs/${c}?validate_only=true`, a, put(++counter)),
      state: configState,
    },
    {
      covers: 'GET /v1/users/{user_id}/configs/{config_name}',
      verb: 'read',
      run: (a, c) => rest('GET', `/v1/users/alice/configs/${c}`, a),
    },
    {
      covers: 'GET /v1/users/{user_id}/configs/{config_name}:render',
      verb: 'read',
      run: (a, c) => rest('GET', `/v1/users/alice/configs/${c}:render?format=yaml`, a),
    },
    {
      covers: 'GET /v1/users/{user_id}/configs/{config_name}/history',
      verb: 'read',
      run: (a, c) => rest('GET', `/v1/users/alice/configs/${c}/history`, a),
    },
    {
      covers: 'PUT /v1/users/{user_id}/configs/{config_name}/retention',
      verb: 'admin',
      run: (a, c) =>
        rest('PUT', `/v1/users/alice/configs/${c}/retention`, a, { max_versions: String(retentionAttempt++) }),
      state: retentionState,
    },
    {
      covers: 'GET /v1/users/{user_id}/configs/{config_name}/blame',
      verb: 'read',
      run: (a, c) => rest('GET', `/v1/users/alice/configs/${c}/blame`, a),
    },
    {
      covers: 'GET /v1/users/{user_id}/configs/{config_name}/history:verify',
      verb: 'read',
      run: (a, c) => rest('GET', `/v1/users/alice/configs/${c}/history:verify`, a),
    },
    {
      covers: 'PUT /v1/users/{user_id}/configs/{config_name}/schema',
      verb: 'admin',
      run: (a, c) => rest('PUT', `/v1/users/alice/configs/${c}/schema`, a, { schema: appSchema(++counter) }),
      state: schemaState,
    },
    {
      covers: 'PUT /v1/users/{user_id}/configs/{config_name}/schema (validate_only)',
      verb: 'admin',
      run: (a, c) =>
        rest('PUT', `/v1/users/alice/configs/${c}/schema`, a, { schema: appSchema(++counter), validate_only: true }),
      state: schemaState,
    },
    {
      covers: 'GET /v1/users/{user_id}/configs/{config_name}/schema',
      verb: 'read',
      run: (a, c) => rest('GET', `/v1/users/alice/configs/${c}/schema`, a),
    },
    {
      covers: 'GET /v1/users/{user_id}/configs/{config_name}/schema/history',
      verb: 'read',
      run: (a, c) => rest('GET', `/v1/users/alice/configs/${c}/schema/history`, a),
    },
    {
      covers: 'GET /v1/users/{user_id}/configs',
      verb: 'read',
      run: (a) => rest('GET', '/v1/users/alice/configs?show_deleted=true&view=CONFIG_VIEW_FULL', a),
    },
    {
      covers: 'PATCH /v1/users/{user_id}/configs/{config_name}',
      verb: 'write',
      run: async (a, c) =>
        restOutcome(
          await http(port(), 'PATCH', `/v1/users/alice/configs/${c}`, {
            body: JSON.stringify({ n: ++counter }),
            headers: { 'content-type': 'application/merge-patch+json', ...headers(a) },
          }),
        ),
      state: configState,
    },
    {
      covers: 'PATCH /v1/users/{user_id}/configs/{config_name} (validate_only)',
      verb: 'write',
      run: (a, c) => rest('PATCH', `/v1/users/alice/configs/${c}?validate_only=true`, a, { n: ++counter }),
      state: configState,
    },
    {
      covers: 'POST /v1/users/{user_id}/configs/{config_name}:rollback',
      verb: 'write',
      run: (a, c) => rest('POST', `/v1/users/alice/configs/${c}:rollback`, a, { to_version: '1' }),
      state: configState,
    },
    {
      covers: 'POST /v1/users/{user_id}/configs/{config_name}:rollback (validate_only)',
      verb: 'write',
      run: (a, c) => rest('POST', `/v1/users/alice/configs/${c}:rollback`, a, { to_version: '1', validate_only: true }),
      state: configState,
    },
    // As over gRPC: DELETE and :undelete one after the other, so alice's app is back for later rows.
    {
      covers: 'DELETE /v1/users/{user_id}/configs/{config_name} (validate_only)',
      verb: 'write',
      run: (a, c) => rest('DELETE', `/v1/users/alice/configs/${c}?validate_only=true`, a),
      state: configState,
    },
    {
      covers: 'DELETE /v1/users/{user_id}/configs/{config_name}',
      verb: 'write',
      run: (a, c) => rest('DELETE', `/v1/users/alice/configs/${c}`, a),
      state: configState,
    },
    {
      covers: 'POST /v1/users/{user_id}/configs/{config_name}:undelete (validate_only)',
      verb: 'write',
      run: (a, c) => rest('POST', `/v1/users/alice/configs/${c}:undelete`, a, { validate_only: true }),
      state: configState,
    },
    {
      covers: 'POST /v1/users/{user_id}/configs/{config_name}:undelete',
      verb: 'write',
      run: (a, c) => rest('POST', `/v1/users/alice/configs/${c}:undelete`, a, {}),
      state: configState,
    },
    {
      covers: 'GET /v1/users/{user_id}/configs/{config_name}:watch',
      verb: 'watch',
      run: (a, c) => sseWatch(a, `/v1/users/alice/configs/${c}:watch`),
    },
    {
      covers: 'GET /v1/users/{user_id}/configs:watch',
      verb: 'watch',
      run: (a) => sseWatch(a, '/v1/users/alice/configs:watch'),
    },
    {
      covers: 'POST /v1/users/{user_id}/configs/{config_name}/instances/{instance_id}:report',
      verb: 'watch',
      run: (a, c) =>
        rest('POST', `/v1/users/alice/configs/${c}/instances/rest-${++counter}:report`, a, { appliedVersion: 0 }),
      state: instancesState,
    },
    {
      covers: 'GET /v1/users/{user_id}/configs/{config_name}/instances',
      verb: 'read',
      run: (a, c) => rest('GET', `/v1/users/alice/configs/${c}/instances`, a),
    },
    {
      covers: 'POST /values/{user_id}/{config_name}',
      verb: 'write',
      run: (a, c) => rest('POST', `/values/alice/${c}`, a, put(++counter)),
      state: configState,
    },
    {
      covers: 'GET /values/{user_id}/{config_name}',
      verb: 'read',
      run: (a, c) => rest('GET', `/values/alice/${c}`, a),
    },
    {
      covers: 'POST /v1/tokens',
      verb: 'admin',
      run: (a) => rest('POST', '/v1/tokens', a, { name: 'made', grants: grantsOn('alice', 'read') }),
      state: tokensState,
    },
    { covers: 'GET /v1/tokens', verb: 'admin', run: (a) => rest('GET', '/v1/tokens', a) },
    {
      covers: 'POST /v1/tokens/{id}:revoke',
      verb: 'admin',
      prepare: throwawayToken,
      run: (a, _c, id) => rest('POST', `/v1/tokens/${id}:revoke`, a, {}),
      state: tokensState,
    },
    {
      covers: 'POST /v1/bindings',
      verb: 'admin',
      run: (a) => rest('POST', '/v1/bindings', a, { principal: 'jwt:someone', grants: grantsOn('alice', 'write') }),
      state: bindingsState,
    },
    { covers: 'GET /v1/bindings', verb: 'admin', run: (a) => rest('GET', '/v1/bindings', a) },
    {
      covers: 'DELETE /v1/bindings',
      verb: 'admin',
      prepare: throwawayBinding,
      run: (a, _c, principal) => rest('DELETE', `/v1/bindings?principal=${encodeURIComponent(principal)}`, a),
      state: bindingsState,
    },
    { covers: 'GET /v1/whoami', verb: 'none', run: (a) => rest('GET', '/v1/whoami', a) },
    { covers: 'GET /v1/status', verb: 'admin', run: (a) => rest('GET', '/v1/status', a) },
    // Metrics need a credential (any: one without grants will do) under the default --metrics authenticated.
    { covers: 'GET /metrics', verb: 'none', run: (a) => rest('GET', '/metrics', a) },
    { covers: 'GET /healthz', verb: 'open', run: (a) => rest('GET', '/healthz', a) },
    { covers: 'GET /readyz', verb: 'open', run: (a) => rest('GET', '/readyz', a) },
    { covers: 'GET /v1/openapi.json', verb: 'open', run: (a) => rest('GET', '/v1/openapi.json', a) },
    // The console's files: the same for everyone, no data in them (it signs in and calls the API).
    {
      covers: 'GET /ui',
      verb: 'open',
      run: async (a) => {
        const response = await http(port(), 'GET', '/ui', { headers: headers(a) });
        return response.status === 308 && response.headers.location === '/ui/' ? OK : restOutcome(response);
      },
    },
    { covers: 'GET /ui/', verb: 'open', run: (a) => rest('GET', '/ui/', a) },
    { covers: 'GET /ui/{file}', verb: 'open', run: (a) => rest('GET', '/ui/app.js', a) },
  ];
  const health = healthClient();
  const healthOps: Operation[] = [
    {
      covers: 'grpc.health.v1.Health/Check',
      verb: 'open',
      run: (a) => grpcCall(() => unary(health.check.bind(health), { service: 'cfgd.v1.ConfigService' }, a)),
    },
    {
      covers: 'grpc.health.v1.Health/List',
      verb: 'open',
      run: (a) => grpcCall(() => unary(health.list.bind(health), {}, a)),
    },
    {
      covers: 'grpc.health.v1.Health/Watch',
      verb: 'open',
      run: (a) => firstMessage(health.watch({ service: '' }, authMetadata(a))),
    },
    ...(['v1', 'v1alpha'] as const).map((version): Operation => ({
      covers: `grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
      verb: 'open',
      run: (a) => {
        const call = reflectionClient(version).serverReflectionInfo(authMetadata(a));
        call.write({ listServices: '' });
        return firstMessage(call);
      },
    })),
  ];
  return [...grpc, ...restOps, ...healthOps];
}

/** Clients of the library services, from the protos their packages ship (they are not cfgd's). */
type Callback = (error: ServiceError | null, response: unknown) => void;
interface HealthClient extends GrpcClient {
  check(request: { service: string }, metadata: Metadata, callback: Callback): unknown;
  list(request: object, metadata: Metadata, callback: Callback): unknown;
  watch(request: { service: string }, metadata: Metadata): ClientReadableStream<unknown>;
}
interface ReflectionClient extends GrpcClient {
  serverReflectionInfo(metadata: Metadata): ClientDuplexStream<unknown, unknown>;
}

function libraryClient<T>(file: string, root: string, service: string): T {
  const definition = loadSync(file, { includeDirs: [root], keepCase: false, defaults: true });
  const Client = service
    .split('.')
    .reduce<unknown>((at, name) => (at as Record<string, unknown>)[name], loadPackageDefinition(definition)) as new (
    address: string,
    credentials: ChannelCredentials,
  ) => T;
  return new Client(`127.0.0.1:${server.cfgd.grpcPort}`, grpcCredentials.createInsecure());
}

function healthClient(): HealthClient {
  return libraryClient<HealthClient>(
    'health/v1/health.proto',
    join(dirname(healthProto), '../..'),
    'grpc.health.v1.Health',
  );
}

function reflectionClient(version: 'v1' | 'v1alpha'): ReflectionClient {
  const root = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection/package.json')), 'build/proto');
  return libraryClient<ReflectionClient>(
    `grpc/reflection/${version}/reflection.proto`,
    root,
    `grpc.reflection.${version}.ServerReflection`,
  );
}

/** OK once the stream's first message arrives (then it is cancelled), else the status it ended with. */
function firstMessage(
  stream: ClientReadableStream<unknown> | ClientDuplexStream<unknown, unknown>,
): Promise<CallOutcome> {
  return new Promise((resolve) => {
    stream.once('data', (message: unknown) => {
      resolve({ ...OK, text: JSON.stringify(message) });
      stream.cancel();
    });
    stream.once('error', (error: ServiceError) => resolve(grpcOutcome(error)));
  });
}

beforeAll(async () => {
  server = await startTestServer({
    auth: { ...DEFAULTS.auth, mode: 'on', adminToken: TEST_ADMIN_TOKEN },
    // A console build, so that /ui/ has something to serve.
    consoleDir: consoleFixture(),
  });
  admin = new AuthClient(server.cfgd.grpcPort, bearer(TEST_ADMIN_TOKEN));
  secrets.valid = (
    await admin.createToken({ name: 'alice-all', grants: grantsOn('alice', 'read', 'write', 'watch') })
  ).secret;
  secrets.reader = (await admin.createToken({ name: 'alice-read', grants: grantsOn('alice', 'read') })).secret;
  secrets.watcher = (await admin.createToken({ name: 'alice-watch', grants: grantsOn('alice', 'watch') })).secret;
  secrets.bob = (
    await admin.createToken({ name: 'bob', grants: grantsOn('bob', 'read', 'write', 'watch', 'admin') })
  ).secret;
  const revoked = await admin.createToken({ name: 'gone', grants: grantsOn('alice', 'read', 'write', 'watch') });
  secrets.revoked = revoked.secret;
  await admin.revokeToken(revoked.id);
  secrets.expired = (
    await admin.createToken({
      name: 'old',
      grants: grantsOn('alice', 'read', 'write', 'watch'),
      ttl: { seconds: 0, nanos: 300_000_000 },
    })
  ).secret;
  // alice's one existing config, written by the admin, with a schema (so that GetSchema finds one);
  // `missing` never exists.
  await sendJson(server.cfgd.httpPort, 'PUT', '/v1/users/alice/configs/app', put(0), { authorization: adminHeader() });
  const schema = await sendJson(
    server.cfgd.httpPort,
    'PUT',
    '/v1/users/alice/configs/app/schema',
    { schema: appSchema(0) },
    { authorization: adminHeader() },
  );
  if (schema.status !== 200) throw new Error(`setting alice's schema failed: ${schema.text}`);
  await new Promise((resolve) => setTimeout(resolve, 400));
});

afterAll(async () => {
  admin.close();
  await server.stop();
});

describe('the access matrix', () => {
  it('has a row for every RPC and every REST route the server serves', () => {
    const covered = new Set(operations().map((operation) => operation.covers.replace(/ \(.*\)$/, '')));
    const served = [...server.cfgd.rpcs, ...server.cfgd.routes.map((route) => `${route.method} ${route.path}`)];
    expect(served.filter((name) => !covered.has(name))).toEqual([]);
    expect(server.cfgd.rpcs).toContain('cfgd.v1.AuthService/WhoAmI');
  });

  for (const [credentialName, credential] of Object.entries(CREDENTIALS)) {
    it(`answers ${credentialName} as expected on every operation`, async () => {
      const problems: string[] = [];
      for (const operation of operations()) {
        const prepared = (await operation.prepare?.()) ?? '';
        const before = await operation.state?.();
        const outcome = await operation.run(credential.header(), 'app', prepared);
        let expected: { code: string; reason?: string };
        if (operation.verb === 'open') {
          expected = { code: 'OK' };
        } else if ('unauthenticated' in credential.expect) {
          expected = { code: 'UNAUTHENTICATED', reason: credential.expect.unauthenticated };
        } else if (credential.expect.verbs.includes(operation.verb)) {
          expected = { code: 'OK' };
        } else {
          expected = { code: 'PERMISSION_DENIED', reason: 'PERMISSION_DENIED' };
        }
        const got = { code: outcome.code, ...(expected.reason === undefined ? {} : { reason: outcome.reason }) };
        if (JSON.stringify(got) !== JSON.stringify(expected)) {
          const { code, reason, message } = outcome;
          problems.push(
            `${operation.covers}: expected ${JSON.stringify(expected)}, got ${JSON.stringify({ code, reason, message })}`,
          );
          continue;
        }
        if (outcome.code === 'OK') continue;
        // Refused: nothing changed, and nothing about the config leaked.
        if (operation.state !== undefined && JSON.stringify(await operation.state()) !== JSON.stringify(before)) {
          problems.push(`${operation.covers}: a refused call changed something`);
        }
        if (outcome.text.includes(SECRET_VALUE) || outcome.text.includes(TEST_ADMIN_TOKEN)) {
          problems.push(`${operation.covers}: a refused call leaked a value or a secret: ${outcome.text}`);
        }
        // Whether the config exists makes no difference to a refused caller.
        const missing = await operation.run(credential.header(), 'missing', (await operation.prepare?.()) ?? '');
        const same = (o: CallOutcome) => ({
          code: o.code,
          reason: o.reason,
          message: o.message?.replace('missing', 'app'),
        });
        if (JSON.stringify(same(missing)) !== JSON.stringify(same(outcome))) {
          problems.push(
            `${operation.covers}: a missing config answers ${JSON.stringify(missing)}, an existing one ${JSON.stringify(outcome)}`,
          );
        }
      }
      expect(problems).toEqual([]);
    });
  }

  it('left the missing config missing: no refused call (a schema change included) created it', async () => {
    for (const path of ['/v1/users/alice/configs/missing/history', '/v1/users/alice/configs/missing/schema']) {
      const res = await http(server.cfgd.httpPort, 'GET', path, { headers: { authorization: adminHeader() } });
      expect(res.status, path).toBe(404);
      expect(res.json.error.details[0].reason, path).toBe('CONFIG_NOT_FOUND');
    }
  });

  it('records the principal as the author, and no secret, in the audit trail', async () => {
    await sendJson(
      server.cfgd.httpPort,
      'PUT',
      '/v1/users/alice/configs/authored',
      { a: 1 },
      {
        authorization: bearer(secrets.valid!),
      },
    );
    const history = await http(server.cfgd.httpPort, 'GET', '/v1/users/alice/configs/authored/history', {
      headers: { authorization: bearer(secrets.reader!) },
    });
    expect(history.json.entries.map((entry: { author: string }) => entry.author)).toEqual(['token:alice-all']);
    expect(history.text).not.toContain(secrets.valid);
  });
});
