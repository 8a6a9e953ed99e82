/**
 * Certificate and JWT principals end to end, with authentication on: their
 * names, the grants their bindings (and a JWT's grants claim) give them, the
 * audit trail naming them, and the credentials refused — a certificate of
 * another CA, a tampered, expired, not-yet-valid, wrongly issued, wrongly
 * addressed or foreign-signed JWT. Keys and certificates are made here.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthServiceClient, type WhoAmIResponse } from '../../generated/cfgd/v1/auth_service.js';
import {
  ConfigServiceClient,
  type GetRequest,
  type GetResponse,
  type PutRequest,
  type PutResponse,
} from '../../generated/cfgd/v1/config_service.js';
import { DEFAULTS } from '../../src/settings/settings.js';
import { AuthClient, bearer, grantsOn, grpcOutcome, TEST_ADMIN_TOKEN, unary } from '../helpers/auth.js';
import { createTestPki, type KeyPair, type TestPki } from '../helpers/certs.js';
import { http, sendJson } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** gRPC clients of one channel. */
function clientsOf(port: number, channel: ChannelCredentials) {
  const options = { 'grpc.use_local_subchannel_pool': 1 };
  return {
    config: new ConfigServiceClient(`127.0.0.1:${port}`, channel, options),
    auth: new AuthServiceClient(`127.0.0.1:${port}`, channel, options),
  };
}

async function outcomeOf(action: () => Promise<unknown>): Promise<{ code: string; reason?: string | undefined }> {
  try {
    await action();
    return { code: 'OK' };
  } catch (error: unknown) {
    const { code, reason } = grpcOutcome(error as ServiceError);
    return { code, reason };
  }
}

describe('client certificates (mTLS) with authentication on', () => {
  let pki: TestPki;
  let server: TestServer;
  let payments: KeyPair;
  let operator: KeyPair;
  const closers: (() => void)[] = [];

  beforeAll(async () => {
    pki = await createTestPki();
    payments = await pki.clientCertificate('/CN=payments/O=acme');
    operator = await pki.clientCertificate('/CN=operator/O=acme');
    server = await startTestServer({
      auth: { ...DEFAULTS.auth, mode: 'on', adminToken: TEST_ADMIN_TOKEN },
      tls: { certFile: pki.server.cert.file, keyFile: pki.server.key.file, clientCaFile: pki.ca.file },
    });
  });
  afterAll(async () => {
    for (const close of closers) close();
    await server.stop();
    pki.cleanup();
  });

  function as(certificate: KeyPair) {
    const clients = clientsOf(
      server.cfgd.grpcPort,
      credentials.createSsl(pki.ca.pem, certificate.key.pem, certificate.cert.pem),
    );
    closers.push(() => {
      clients.config.close();
      clients.auth.close();
    });
    return clients;
  }

  function httpsGet(path: string, certificate: KeyPair): Promise<{ status: number; json: any }> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: server.cfgd.httpPort,
          path,
          ca: pki.ca.pem,
          cert: certificate.cert.pem,
          key: certificate.key.pem,
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  it("names the certificate's subject as the principal, which has the grants of its binding and no others", async () => {
    const { config, auth } = as(payments);
    const me = await unary<object, WhoAmIResponse>(auth.whoAmI.bind(auth), {}, undefined);
    expect(me).toMatchObject({ principal: 'cert:CN=payments,O=acme', kind: 'certificate', grants: [] });
    const put = () =>
      unary<PutRequest, PutResponse>(
        config.put.bind(config),
        {
          userId: 'payments',
          configName: 'app',
          values: { retries: 3 },
          expectedVersion: undefined,
          validateOnly: false,
        },
        undefined,
      );
    expect(await outcomeOf(put)).toEqual({ code: 'PERMISSION_DENIED', reason: 'PERMISSION_DENIED' });
    expect((await httpsGet('/v1/users/payments/configs/app', payments)).status).toBe(403);

    // The operator's certificate gets it through the TLS handshake; its admin token says who it is.
    const admin = as(operator);
    await unary(
      admin.auth.setBinding.bind(admin.auth),
      { principal: 'cert:CN=payments,O=acme', grants: grantsOn('payments', 'read', 'write') },
      bearer(TEST_ADMIN_TOKEN),
    );
    const written = await put();
    expect(written.auditEntry?.author).toBe('cert:CN=payments,O=acme');
    const read = await httpsGet('/v1/users/payments/configs/app', payments);
    expect(read.status).toBe(200);
    expect(read.json.config.values).toEqual({ retries: 3 });
    // Still only its own tenant.
    expect((await httpsGet('/v1/users/billing/configs/app', payments)).status).toBe(403);
    const other = await outcomeOf(() =>
      unary<GetRequest, GetResponse>(
        config.get.bind(config),
        { userId: 'billing', configName: 'app', version: 0 },
        undefined,
      ),
    );
    expect(other).toEqual({ code: 'PERMISSION_DENIED', reason: 'PERMISSION_DENIED' });
  });

  it('refuses a certificate of another CA during the handshake, on both transports', async () => {
    const { auth } = as(pki.otherClient);
    expect((await outcomeOf(() => unary(auth.whoAmI.bind(auth), {}, undefined))).code).toBe('UNAVAILABLE');
    await expect(httpsGet('/v1/whoami', pki.otherClient)).rejects.toThrow();
  });

  it('lets an authorization header speak for the caller over a certificate', async () => {
    const { auth } = as(payments);
    const me = await unary<object, WhoAmIResponse>(auth.whoAmI.bind(auth), {}, bearer(TEST_ADMIN_TOKEN));
    expect(me.principal).toBe('token:admin');
  });
});

describe('JWTs of an outside issuer with authentication on', () => {
  const ISSUER = 'https://kubernetes.default.svc';
  const AUDIENCE = 'cfgd';
  const SUBJECT = 'system:serviceaccount:prod:app';
  let dir: string;
  let server: TestServer;
  let admin: AuthClient;
  let key: CryptoKey;
  let foreign: CryptoKey;

  const sign = (
    claims: Record<string, unknown> = {},
    options: { key?: CryptoKey; issuer?: string; audience?: string; exp?: number; nbf?: number } = {},
  ): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    let jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256' })
      .setSubject(SUBJECT)
      .setIssuer(options.issuer ?? ISSUER)
      .setAudience(options.audience ?? AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(options.exp ?? now + 600);
    if (options.nbf !== undefined) jwt = jwt.setNotBefore(options.nbf);
    return jwt.sign(options.key ?? key);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cfgd-jwt-'));
    const pair = await generateKeyPair('RS256');
    key = pair.privateKey;
    foreign = (await generateKeyPair('RS256')).privateKey;
    writeFileSync(join(dir, 'issuer.pem'), await exportSPKI(pair.publicKey));
    server = await startTestServer({
      auth: {
        ...DEFAULTS.auth,
        mode: 'on',
        adminToken: TEST_ADMIN_TOKEN,
        jwt: { publicKeyFile: join(dir, 'issuer.pem'), issuer: ISSUER, audience: AUDIENCE, grantsClaim: 'cfgd_grants' },
      },
    });
    admin = new AuthClient(server.cfgd.grpcPort, bearer(TEST_ADMIN_TOKEN));
    await sendJson(
      server.cfgd.httpPort,
      'PUT',
      '/v1/users/k8s/configs/app',
      { a: 1 },
      { authorization: bearer(TEST_ADMIN_TOKEN) },
    );
  });
  afterAll(async () => {
    admin.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function get(jwt: string, path = '/v1/users/k8s/configs/app') {
    const response = await http(server.cfgd.httpPort, 'GET', path, { headers: { authorization: bearer(jwt) } });
    return {
      status: response.status,
      reason: response.json?.error?.details?.[0]?.reason as string | undefined,
      json: response.json,
    };
  }

  it("names the JWT's subject as the principal, with the grants of its claim and of its binding", async () => {
    const jwt = await sign({ cfgd_grants: ['read:users/k8s/configs/*'] });
    expect((await get(jwt, '/v1/whoami')).json).toMatchObject({ principal: `jwt:${SUBJECT}`, kind: 'jwt' });
    expect((await get(jwt)).status).toBe(200);
    const write = () =>
      sendJson(server.cfgd.httpPort, 'PUT', '/v1/users/k8s/configs/app', { a: 2 }, { authorization: bearer(jwt) });
    expect((await write()).status).toBe(403);
    await admin.setBinding(`jwt:${SUBJECT}`, grantsOn('k8s', 'write'));
    const written = await write();
    expect(written.status).toBe(200);
    expect(written.json.audit_entry.author).toBe(`jwt:${SUBJECT}`);
    // Over gRPC too.
    const { config } = clientsOf(server.cfgd.grpcPort, credentials.createInsecure());
    const md = new Metadata();
    md.set('authorization', bearer(jwt));
    const got = await new Promise<GetResponse>((resolve, reject) =>
      config.get({ userId: 'k8s', configName: 'app', version: 0 }, md, (error, response) =>
        error ? reject(error) : resolve(response),
      ),
    );
    expect(got.config?.values).toEqual({ a: 2 });
    config.close();
  });

  it('refuses tampered, foreign-signed, expired, early, wrongly issued and wrongly addressed JWTs', async () => {
    const valid = await sign();
    const [header, payload, signature] = valid.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: 'system:serviceaccount:kube-system:admin' })).toString(
      'base64url',
    );
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, string, string][] = [
      ['a payload changed after signing', `${header}.${forged}.${signature}`, 'TOKEN_INVALID'],
      ['a signature changed', `${header}.${payload}.${signature.slice(0, -4)}AAAA`, 'TOKEN_INVALID'],
      ['signed by another key', await sign({}, { key: foreign }), 'TOKEN_INVALID'],
      ['expired', await sign({}, { exp: now - 120 }), 'TOKEN_EXPIRED'],
      ['not yet valid', await sign({}, { nbf: now + 600 }), 'TOKEN_NOT_YET_VALID'],
      ['another issuer', await sign({}, { issuer: 'https://elsewhere' }), 'TOKEN_INVALID'],
      ['another audience', await sign({}, { audience: 'vault' }), 'TOKEN_INVALID'],
    ];
    const { auth } = clientsOf(server.cfgd.grpcPort, credentials.createInsecure());
    for (const [what, jwt, reason] of cases) {
      const rest = await get(jwt);
      expect({ what, status: rest.status, reason: rest.reason }).toEqual({ what, status: 401, reason });
      const grpc = await outcomeOf(() => unary(auth.whoAmI.bind(auth), {}, bearer(jwt)));
      expect({ what, ...grpc }).toEqual({ what, code: 'UNAUTHENTICATED', reason });
    }
    auth.close();
  });
});
