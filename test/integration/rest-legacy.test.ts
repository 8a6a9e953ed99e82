import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, parseRawResponse, rawHttp, sendJson } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { AuthClient, bearer, grantsOn, TEST_ADMIN_TOKEN } from '../helpers/auth.js';
import { DEFAULTS } from '../../src/settings/settings.js';

let server: TestServer;
let port: number;

beforeAll(async () => {
  server = await startTestServer();
  port = server.cfgd.httpPort;
});
afterAll(async () => server.stop());

const fixture = (name: string): any =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8'));

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SEED_TIME =
  /^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{2} \d{4} \d{2}:\d{2}:\d{2} GMT\+00:00$/;

/** Checks the formats of the id and time values, then blanks them for comparison. */
function normalize(document: any, writtenNow = true): any {
  expect(document.id).toMatch(UUID);
  for (const entry of document.audit_trail) {
    expect(entry.created_at).toMatch(SEED_TIME);
    const written = Date.parse(entry.created_at.replace(' GMT+00:00', ' GMT'));
    if (writtenNow) expect(Math.abs(Date.now() - written)).toBeLessThan(60_000);
  }
  return {
    ...document,
    id: '<uuid>',
    audit_trail: document.audit_trail.map((entry: any) => ({ ...entry, created_at: '<time>' })),
  };
}

/** The request curl sends for `curl -XPOST http://localhost:PORT/values/1/test -d'…' -H "Content-Type: application/json"`. */
function curlPost(path: string, body: string, extra: readonly string[] = []): string {
  return [
    `POST ${path} HTTP/1.1`,
    `Host: localhost:${port}`,
    ...extra,
    'User-Agent: curl/7.88.1',
    'Accept: */*',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

function curlGet(path: string, extra: readonly string[] = []): string {
  return [
    `GET ${path} HTTP/1.1`,
    `Host: localhost:${port}`,
    ...extra,
    'User-Agent: curl/7.88.1',
    'Accept: */*',
    'Connection: close',
    '',
    '',
  ].join('\r\n');
}

async function raw(
  request: string,
  toPort = port,
): Promise<{ status: number; headers: Record<string, string>; document: any }> {
  const { response } = await rawHttp(toPort, request);
  const parsed = parseRawResponse(response);
  return { status: parsed.status, headers: parsed.headers, document: JSON.parse(parsed.body) };
}

/**
 * The seed's curl transcript, on `toPort`, with `extra` header lines (a
 * token when authentication is on), field for field.
 */
async function replaySeed(toPort: number, extra: readonly string[] = []): Promise<void> {
  {
    const first = await raw(curlPost('/values/1/test', '{"test": 1}', extra), toPort);
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(Object.keys(first.document)).toEqual(['audit_trail', 'config_id', 'id', 'values', 'version']);
    expect(normalize(first.document)).toEqual(normalize(fixture('seed-first.json'), false));

    const second = await raw(curlPost('/values/1/test', '{"hello": "world"}', extra), toPort);
    expect(second.status).toBe(200);
    const expected = fixture('seed-second.json');
    // The seed's second document drops `value` from version 1's change, contradicting its own first
    // document; cfgd keeps the audit trail immutable, so version 1 reads the same in both.
    expected.audit_trail[0].changes[0].value = 1;
    expect(normalize(second.document)).toEqual(normalize(expected, false));
    expect(second.document.id).toBe(first.document.id);
    expect(second.document.audit_trail[0]).toEqual(first.document.audit_trail[0]);

    const got = await raw(curlGet('/values/1/test', extra), toPort);
    expect(got.status).toBe(200);
    expect(got.document).toEqual(second.document);
  }
}

describe('the seed transcript', () => {
  it('answers the two curl POSTs and the GET with the seed documents (auth off)', async () => {
    await replaySeed(port);
  });

  it('answers them the same with auth on, with a token header (Bearer, or curl -u :TOKEN)', async () => {
    for (const scheme of ['bearer', 'basic'] as const) {
      const secured = await startTestServer({ auth: { ...DEFAULTS.auth, mode: 'on', adminToken: TEST_ADMIN_TOKEN } });
      try {
        const admin = new AuthClient(secured.cfgd.grpcPort, bearer(TEST_ADMIN_TOKEN));
        const { secret } = await admin.createToken({ name: 'script', grants: grantsOn('1', 'read', 'write') });
        admin.close();
        const header =
          scheme === 'bearer'
            ? `Authorization: Bearer ${secret}`
            : `Authorization: Basic ${Buffer.from(`:${secret}`).toString('base64')}`;
        const refused = await raw(curlGet('/values/1/test'), secured.cfgd.httpPort);
        expect(refused.status).toBe(401);
        await replaySeed(secured.cfgd.httpPort, [header]);
      } finally {
        await secured.stop();
      }
    }
  });

  it('derives the same id for the pair on every call, and a different one for another pair', async () => {
    const a = await sendJson(port, 'POST', '/values/2/test', { a: 1 });
    const b = await sendJson(port, 'POST', '/values/2/test', { a: 2 });
    const c = await sendJson(port, 'POST', '/values/2/other', { a: 1 });
    expect(a.json.id).toBe(b.json.id);
    expect(c.json.id).not.toBe(a.json.id);
    expect(c.json.config_id).toBe('2-other');
  });

  it('answers an unchanged POST with 200 and the current document, without a new version', async () => {
    const first = await sendJson(port, 'POST', '/values/3/same', { a: 1, b: [1, 2] });
    const again = await sendJson(port, 'POST', '/values/3/same', { b: [1, 2], a: 1.0 });
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    expect(again.json.version).toBe(1);
  });

  it('reports updated keys with value and old_value', async () => {
    await sendJson(port, 'POST', '/values/4/upd', { a: 1, keep: true });
    const res = await sendJson(port, 'POST', '/values/4/upd', { a: { nested: 2 }, keep: true });
    expect(res.json.audit_trail[1].changes).toEqual([
      { action: 'updated', key: 'a', old_value: 1, value: { nested: 2 } },
    ]);
    expect(Object.keys(res.json.audit_trail[1].changes[0])).toEqual(['action', 'key', 'old_value', 'value']);
  });

  it('answers GET for an unknown config with 404 and the JSON error body', async () => {
    const res = await http(port, 'GET', '/values/5/missing');
    expect(res.status).toBe(404);
    expect(res.json).toEqual({
      error: {
        code: 404,
        status: 'NOT_FOUND',
        message: 'users/5/configs/missing does not exist',
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
            reason: 'CONFIG_NOT_FOUND',
            domain: 'cfgd.v1',
            metadata: { resource: 'users/5/configs/missing' },
          },
        ],
      },
    });
  });
});
