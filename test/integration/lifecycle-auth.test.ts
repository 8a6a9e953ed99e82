/**
 * ListConfigs with authentication on: it needs `read` on at least one config
 * of the user (PERMISSION_DENIED otherwise) and returns only the configs the
 * caller may read, paged over those alone, over gRPC and REST.
 */
import { credentials as grpcCredentials, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigServiceClient,
  ConfigView,
  type ListConfigsRequest,
  type ListConfigsResponse,
} from '../../generated/cfgd/v1/config_service.js';
import type { Grant } from '../../generated/cfgd/v1/auth_service.js';
import { DEFAULTS } from '../../src/settings/settings.js';
import { AuthClient, bearer, grpcOutcome, TEST_ADMIN_TOKEN, unary } from '../helpers/auth.js';
import { http, sendJson } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let admin: AuthClient;
let config: ConfigServiceClient;

const ALICE = ['app', 'cache', 'db', 'queue', 'zeta'];
const SECRET = 'db-password-do-not-list';
let tokens = 0;

beforeAll(async () => {
  server = await startTestServer({ auth: { ...DEFAULTS.auth, mode: 'on', adminToken: TEST_ADMIN_TOKEN } });
  admin = new AuthClient(server.cfgd.grpcPort, bearer(TEST_ADMIN_TOKEN));
  config = new ConfigServiceClient(`127.0.0.1:${server.cfgd.grpcPort}`, grpcCredentials.createInsecure());
  const asAdmin = { authorization: bearer(TEST_ADMIN_TOKEN) };
  for (const name of ALICE) {
    const res = await sendJson(
      server.cfgd.httpPort,
      'PUT',
      `/v1/users/alice/configs/${name}`,
      { name, SECRET },
      asAdmin,
    );
    if (res.status !== 200) throw new Error(`seeding failed: ${res.text}`);
  }
  await sendJson(server.cfgd.httpPort, 'PUT', '/v1/users/alice/configs/old', { gone: true }, asAdmin);
  await http(server.cfgd.httpPort, 'DELETE', '/v1/users/alice/configs/old', { headers: asAdmin });
  await sendJson(server.cfgd.httpPort, 'PUT', '/v1/users/bob/configs/app', { bob: true }, asAdmin);
});

afterAll(async () => {
  config.close();
  admin.close();
  await server.stop();
});

/** A token holding `grants` (as `verb:resource`). */
async function token(...grants: string[]): Promise<string> {
  const parsed: Grant[] = grants.map((grant) => {
    const [verb, resource] = grant.split(':') as [string, string];
    return { verb, resource };
  });
  return bearer((await admin.createToken({ name: `lister-${++tokens}`, grants: parsed })).secret);
}

function list(authorization: string, request: Partial<ListConfigsRequest> = {}): Promise<ListConfigsResponse> {
  return unary<ListConfigsRequest, ListConfigsResponse>(
    config.listConfigs.bind(config),
    {
      userId: 'alice',
      pageSize: 0,
      pageToken: '',
      namePrefix: '',
      showDeleted: false,
      view: ConfigView.CONFIG_VIEW_FULL,
      ...request,
    },
    authorization,
  );
}

/** Every page's names, over gRPC. */
async function pages(authorization: string, request: Partial<ListConfigsRequest> = {}): Promise<string[][]> {
  const result: string[][] = [];
  let pageToken = '';
  do {
    const page = await list(authorization, { ...request, pageToken });
    result.push(page.configs.map((c) => c.configName));
    pageToken = page.nextPageToken;
  } while (pageToken !== '' && result.length < 20);
  return result;
}

/** The names over REST, one page of up to 1000. */
async function restNames(authorization: string, userId = 'alice', query = ''): Promise<string[]> {
  const res = await http(server.cfgd.httpPort, 'GET', `/v1/users/${userId}/configs?page_size=1000${query}`, {
    headers: { authorization },
  });
  expect(res.status, res.text).toBe(200);
  expect(res.json.next_page_token).toBe('');
  return res.json.configs.map((c: { config_name: string }) => c.config_name);
}

async function refusedList(authorization: string | undefined, userId = 'alice') {
  let grpcError: ServiceError | undefined;
  try {
    await unary(config.listConfigs.bind(config), { ...emptyRequest(), userId }, authorization);
  } catch (error: unknown) {
    grpcError = error as ServiceError;
  }
  if (grpcError === undefined) throw new Error('expected the gRPC ListConfigs to be refused');
  const rest = await http(server.cfgd.httpPort, 'GET', `/v1/users/${userId}/configs`, {
    headers: authorization === undefined ? {} : { authorization },
  });
  return { grpc: grpcOutcome(grpcError), rest };
}

const emptyRequest = (): ListConfigsRequest => ({
  userId: '',
  pageSize: 0,
  pageToken: '',
  namePrefix: '',
  showDeleted: false,
  view: ConfigView.CONFIG_VIEW_FULL,
});

describe('ListConfigs with authentication on', () => {
  it('lists only the configs a token may read: one config, some, or all of the user', async () => {
    const appOnly = await token('read:users/alice/configs/app');
    const app = await list(appOnly);
    expect(app.configs.map((c) => c.configName)).toEqual(['app']);
    expect(app.configs[0]?.values).toEqual({ name: 'app', SECRET });
    expect(app.nextPageToken).toBe('');
    expect(await restNames(appOnly)).toEqual(['app']);

    const all = await token('read:users/alice/configs/*');
    expect(await pages(all)).toEqual([ALICE]);
    expect(await restNames(all)).toEqual(ALICE);
    // Deleted ones too, with show_deleted.
    expect(await restNames(all, 'alice', '&show_deleted=true')).toEqual(['app', 'cache', 'db', 'old', 'queue', 'zeta']);

    // Two grants, far apart by name: paged over the readable ones only, without empty pages.
    const two = await token('read:users/alice/configs/app', 'read:users/alice/configs/zeta');
    expect(await pages(two, { pageSize: 1 })).toEqual([['app'], ['zeta']]);
    expect(await pages(two, { pageSize: 2 })).toEqual([['app', 'zeta']]);
    expect(await pages(two, { namePrefix: 'z' })).toEqual([['zeta']]);

    // admin covers read; a wildcard user covers alice.
    expect(await restNames(await token('admin:users/alice/configs/db'))).toEqual(['db']);
    const everyApp = await token('read:users/*/configs/app');
    expect(await restNames(everyApp)).toEqual(['app']);
    expect(await restNames(everyApp, 'bob')).toEqual(['app']);

    // A grant on a config that does not exist authorizes the list, which is then empty.
    const nothingYet = await token('read:users/alice/configs/future');
    expect(await list(nothingYet)).toEqual({ configs: [], nextPageToken: '' });
  });

  it("refuses a caller without read on any of the user's configs, revealing nothing about them", async () => {
    const callers = {
      "bob's token": await token(
        'read:users/bob/configs/*',
        'write:users/bob/configs/*',
        'watch:users/bob/configs/*',
        'admin:users/bob/configs/*',
      ),
      'write and watch on every config of alice': await token(
        'write:users/alice/configs/*',
        'watch:users/alice/configs/*',
      ),
      'read on a user whose name starts like alice': await token('read:users/alice2/configs/*'),
    };
    for (const [who, authorization] of Object.entries(callers)) {
      const { grpc, rest } = await refusedList(authorization);
      expect(grpc, who).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'PERMISSION_DENIED' });
      expect(rest.status, who).toBe(403);
      expect(rest.json.error).toMatchObject({ status: 'PERMISSION_DENIED' });
      for (const text of [grpc.text, rest.text]) {
        expect(text).not.toContain(SECRET);
        for (const name of ALICE)
          expect(text, `${who} learns of ${name}`).not.toMatch(new RegExp(`configs/${name}\\b`));
      }
    }
    // Bob's token lists bob's configs.
    expect(await restNames(callers["bob's token"], 'bob')).toEqual(['app']);

    const anonymous = await refusedList(undefined);
    expect(anonymous.grpc).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_MISSING' });
    expect(anonymous.rest.status).toBe(401);
  });
});
