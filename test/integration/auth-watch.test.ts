/**
 * Watch streams stay authorized for as long as they run: a revoked token, an
 * expired one, or a binding that loses its grant ends the stream with the
 * status that says why (gRPC status, SSE `event: error`), while other
 * streams go on.
 */
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/settings/settings.js';
import { AuthClient, bearer, grantsOn, grpcWatchWith, TEST_ADMIN_TOKEN } from '../helpers/auth.js';
import { http, sendJson } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { SseClient } from '../helpers/sse.js';
import { eventually } from '../helpers/wait.js';

const ISSUER = 'https://issuer.test';
const AUDIENCE = 'cfgd';

let server: TestServer;
let admin: AuthClient;
let keyDir: string;
let signJwt: (subject: string, expiresInSec?: number) => Promise<string>;

beforeAll(async () => {
  keyDir = mkdtempSync(join(tmpdir(), 'cfgd-jwks-'));
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  writeFileSync(
    join(keyDir, 'jwks.json'),
    JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] }),
  );
  signJwt = (subject, expiresInSec = 600) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setSubject(subject)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSec)
      .sign(privateKey);
  server = await startTestServer({
    auth: {
      ...DEFAULTS.auth,
      mode: 'on',
      adminToken: TEST_ADMIN_TOKEN,
      jwt: { jwksFile: join(keyDir, 'jwks.json'), issuer: ISSUER, audience: AUDIENCE },
    },
  });
  admin = new AuthClient(server.cfgd.grpcPort, bearer(TEST_ADMIN_TOKEN));
  await sendJson(
    server.cfgd.httpPort,
    'PUT',
    '/v1/users/alice/configs/app',
    { a: 1 },
    { authorization: bearer(TEST_ADMIN_TOKEN) },
  );
});

afterAll(async () => {
  admin.close();
  await server.stop();
  rmSync(keyDir, { recursive: true, force: true });
});

/** An SSE watch opened with `authorization`, once its first version arrived. */
async function sseWatch(authorization: string, path: string): Promise<SseClient> {
  const { client, res } = await SseClient.open(server.cfgd.httpPort, path, { authorization });
  expect(res.statusCode).toBe(200);
  await client.until((c) => c.messages().length > 0);
  return client;
}

/** The error event an SSE stream ended with. */
async function sseError(client: SseClient): Promise<{ status: string; reason: string; message: string }> {
  await client.until((c) => c.events.some((e) => e.event === 'error'));
  const body = JSON.parse(client.events.find((e) => e.event === 'error')!.data);
  client.close();
  return { status: body.error.status, reason: body.error.details[0].reason, message: body.error.message };
}

describe('open watch streams and revocation', () => {
  it('revoking a token ends its gRPC and SSE streams, config and user watches, with TOKEN_REVOKED; others go on', async () => {
    const doomed = await admin.createToken({ name: 'doomed', grants: grantsOn('alice', 'watch') });
    const spared = await admin.createToken({ name: 'spared', grants: grantsOn('alice', 'watch') });
    const port = server.cfgd.grpcPort;
    const config = grpcWatchWith(port, bearer(doomed.secret), 'alice', 'app');
    const user = grpcWatchWith(port, bearer(doomed.secret), 'alice', '');
    const other = grpcWatchWith(port, bearer(spared.secret), 'alice', 'app');
    await Promise.all([config.first, user.first, other.first]);
    const sse = await sseWatch(bearer(doomed.secret), '/v1/users/alice/configs/app:watch');
    const sseUser = await sseWatch(bearer(doomed.secret), '/v1/users/alice/configs:watch');

    // A unary call first, so that the node remembers the token's principal.
    const before = await http(server.cfgd.httpPort, 'GET', '/v1/whoami', {
      headers: { authorization: bearer(doomed.secret) },
    });
    expect(before.json.principal).toBe('token:doomed');
    const revokedAt = Date.now();
    await admin.revokeToken(doomed.id);
    const after = await http(server.cfgd.httpPort, 'GET', '/v1/whoami', {
      headers: { authorization: bearer(doomed.secret) },
    });
    expect(after.status).toBe(401);
    expect(after.json.error.details[0].reason).toBe('TOKEN_REVOKED');
    for (const ended of [await config.ended(revokedAt), await user.ended(revokedAt)]) {
      expect(ended).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_REVOKED' });
      expect(ended.message).toContain('was revoked');
    }
    for (const client of [sse, sseUser]) {
      expect(await sseError(client)).toMatchObject({ status: 'UNAUTHENTICATED', reason: 'TOKEN_REVOKED' });
    }
    // The spared stream is still open, and still delivers.
    expect(server.cfgd.app.stats().watches).toBe(1);
    const delivered = new Promise<void>((resolve) => other.stream.once('data', () => resolve()));
    await sendJson(
      server.cfgd.httpPort,
      'PUT',
      '/v1/users/alice/configs/app',
      { a: 2 },
      {
        authorization: bearer(TEST_ADMIN_TOKEN),
      },
    );
    await delivered;
    other.cancel();
    await eventually(() => expect(server.cfgd.app.stats().watches).toBe(0));
  });

  it("a token's expiry ends its streams with TOKEN_EXPIRED", async () => {
    const brief = await admin.createToken({
      name: 'brief',
      grants: grantsOn('alice', 'watch'),
      ttl: { seconds: 1, nanos: 0 },
    });
    const stream = grpcWatchWith(server.cfgd.grpcPort, bearer(brief.secret), 'alice', 'app');
    await stream.first;
    const sse = await sseWatch(bearer(brief.secret), '/v1/users/alice/configs/app:watch');
    const ended = await stream.ended(Date.now());
    expect(ended).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_EXPIRED' });
    expect(await sseError(sse)).toMatchObject({ status: 'UNAUTHENTICATED', reason: 'TOKEN_EXPIRED' });
  });

  it("removing a JWT principal's binding ends its streams with PERMISSION_DENIED", async () => {
    await admin.setBinding('jwt:system:serviceaccount:prod:sidecar', grantsOn('alice', 'watch'));
    const jwt = await signJwt('system:serviceaccount:prod:sidecar');
    const stream = grpcWatchWith(server.cfgd.grpcPort, bearer(jwt), 'alice', 'app');
    await stream.first;
    const sse = await sseWatch(bearer(jwt), '/v1/users/alice/configs:watch');
    // Another grant on another tenant keeps the principal known but no longer allowed here.
    await admin.setBinding('jwt:system:serviceaccount:prod:sidecar', grantsOn('bob', 'watch'));
    const ended = await stream.ended(Date.now());
    expect(ended).toMatchObject({ code: 'PERMISSION_DENIED', reason: 'PERMISSION_DENIED' });
    expect(ended.message).toContain('may no longer watch users/alice/configs/app');
    expect(await sseError(sse)).toMatchObject({ status: 'PERMISSION_DENIED', reason: 'PERMISSION_DENIED' });
  });

  it("a JWT's exp ends its streams with TOKEN_EXPIRED", async () => {
    await admin.setBinding('jwt:short-lived', grantsOn('alice', 'watch'));
    const stream = grpcWatchWith(server.cfgd.grpcPort, bearer(await signJwt('short-lived', 2)), 'alice', 'app');
    await stream.first;
    expect(await stream.ended(Date.now())).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_EXPIRED' });
  });
});
