/**
 * Both listeners over TLS, with and without client certificates (mTLS): who
 * gets in on each transport, and the verified client certificate each
 * transport hands to the request pipeline (and none it did not verify).
 */
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { request } from 'node:https';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/settings/settings.js';
import type { Interceptor } from '../../src/transport/pipeline.js';
import type { ClientCertificate } from '../../src/transport/tls.js';
import { createTestPki, type KeyPair, type TestPki } from '../helpers/certs.js';
import { rejection, TestClient } from '../helpers/client.js';
import { http } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let pki: TestPki;
let payments: KeyPair;
beforeAll(async () => {
  pki = await createTestPki();
  payments = await pki.clientCertificate('/CN=payments/O=acme');
});
afterAll(() => pki.cleanup());

/** A cfgd over TLS, the client certificate of each call it ran, and what it logged. */
interface TlsServer {
  readonly server: TestServer;
  readonly seen: (ClientCertificate | undefined)[];
  readonly logged: { level: number; msg: string; component?: string }[];
  grpcClient(certificate?: KeyPair): TestClient;
  stop(): Promise<void>;
}

async function startTlsServer(options: { clientCa: boolean; shutdownGraceMs?: number }): Promise<TlsServer> {
  const seen: (ClientCertificate | undefined)[] = [];
  const record: Interceptor = async (call, next) => {
    seen.push(call.info.clientCertificate);
    return next();
  };
  const logged: TlsServer['logged'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logged.push(JSON.parse(chunk.toString('utf8')) as TlsServer['logged'][number]);
      done();
    },
  });
  const server = await startTestServer(
    {
      // What the transports hand to the pipeline is the subject here, not who may do what.
      auth: { ...DEFAULTS.auth, mode: 'off' },
      ...(options.shutdownGraceMs === undefined ? {} : { shutdownGraceMs: options.shutdownGraceMs }),
      tls: {
        certFile: pki.server.cert.file,
        keyFile: pki.server.key.file,
        ...(options.clientCa ? { clientCaFile: pki.ca.file } : {}),
      },
    },
    'normal',
    pino({ level: 'debug' }, sink),
    { interceptors: [record] },
  );
  const clients: TestClient[] = [];
  return {
    server,
    seen,
    logged,
    grpcClient: (certificate) => {
      const channel =
        certificate === undefined
          ? credentials.createSsl(pki.ca.pem)
          : credentials.createSsl(pki.ca.pem, certificate.key.pem, certificate.cert.pem);
      const client = new TestClient(server.cfgd.grpcPort, { credentials: channel, ownConnection: true });
      clients.push(client);
      return client;
    },
    stop: async () => {
      for (const client of clients) client.close();
      await server.stop();
    },
  };
}

/** One HTTPS request on a connection of its own (no TLS session reused from another test). */
function https(
  port: number,
  path: string,
  certificate?: KeyPair,
): Promise<{ status: number; json: { [key: string]: unknown } }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        ca: pki.ca.pem,
        ...(certificate === undefined ? {} : { cert: certificate.cert.pem, key: certificate.key.pem }),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Resolves with the error a promise rejects with; fails if it resolves. */
async function failure(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (error: unknown) {
    return error as Error;
  }
  throw new Error('expected the request to fail, but it succeeded');
}

/** Nothing at warn level or above (but the warning that auth is off): a refused handshake is the client's affair. */
function expectQuiet(logged: TlsServer['logged']): void {
  expect(logged.filter((entry) => entry.level >= 40 && entry.component !== 'auth')).toEqual([]);
}

describe('TLS without client certificates', () => {
  let tls: TlsServer;
  beforeAll(async () => {
    tls = await startTlsServer({ clientCa: false });
  });
  afterAll(async () => tls.stop());

  it('serves gRPC over TLS, with no client certificate in the call', async () => {
    const before = tls.seen.length;
    const response = await tls.grpcClient().status();
    expect(response.watchStreams).toBe(0);
    expect(tls.seen.slice(before)).toEqual([undefined]);
  });

  it('serves REST over HTTPS, with no client certificate in the call', async () => {
    const before = tls.seen.length;
    const response = await https(tls.server.cfgd.httpPort, '/v1/status');
    expect(response.status).toBe(200);
    expect(response.json).toHaveProperty('watch_streams', '0');
    expect(tls.seen.slice(before)).toEqual([undefined]);
  });

  it('does not report a client certificate it did not ask for and did not verify', async () => {
    const before = tls.seen.length;
    await tls.grpcClient(payments).status();
    expect((await https(tls.server.cfgd.httpPort, '/v1/status', payments)).status).toBe(200);
    expect(tls.seen.slice(before)).toEqual([undefined, undefined]);
  });

  it('refuses a plaintext gRPC client', async () => {
    const before = tls.seen.length;
    const client = new TestClient(tls.server.cfgd.grpcPort, { ownConnection: true });
    try {
      const error = await rejection(client.status());
      expect(error.code).toBe(status.UNAVAILABLE);
    } finally {
      client.close();
    }
    expect(tls.seen.length).toBe(before);
    expectQuiet(tls.logged);
  });

  it('refuses plain HTTP on the HTTPS port', async () => {
    const before = tls.seen.length;
    await failure(http(tls.server.cfgd.httpPort, 'GET', '/v1/status'));
    expect(tls.seen.length).toBe(before);
    expect(tls.logged).toContainEqual(expect.objectContaining({ level: 20, msg: 'TLS handshake failed' }));
    expectQuiet(tls.logged);
  });
});

describe('TLS with client certificates (mTLS)', () => {
  let tls: TlsServer;
  beforeAll(async () => {
    tls = await startTlsServer({ clientCa: true });
  });
  afterAll(async () => tls.stop());

  const expected = (): ClientCertificate => ({
    subject: 'CN=payments,O=acme',
    validTo: Date.parse(new X509Certificate(payments.cert.pem).validTo),
  });

  it('runs a gRPC call of a client with a certificate of the client CA, and hands it to the pipeline', async () => {
    const before = tls.seen.length;
    const client = tls.grpcClient(payments);
    await client.put({ userId: 'tls', configName: 'grpc', values: { a: 1 } });
    expect((await client.get({ userId: 'tls', configName: 'grpc' })).config?.values).toEqual({ a: 1 });
    expect(tls.seen.slice(before)).toEqual([expected(), expected()]);
  });

  it('runs an HTTPS request of a client with a certificate of the client CA, and hands it to the pipeline', async () => {
    const before = tls.seen.length;
    const response = await https(tls.server.cfgd.httpPort, '/v1/status', payments);
    expect(response.status).toBe(200);
    expect(tls.seen.slice(before)).toEqual([expected()]);
  });

  it('refuses a gRPC client without a certificate', async () => {
    const before = tls.seen.length;
    const error: ServiceError = await rejection(tls.grpcClient().status());
    expect(error.code).toBe(status.UNAVAILABLE);
    expect(tls.seen.length).toBe(before);
    expectQuiet(tls.logged);
  });

  it('refuses a gRPC client with a certificate of another CA', async () => {
    const before = tls.seen.length;
    const error: ServiceError = await rejection(tls.grpcClient(pki.otherClient).status());
    expect(error.code).toBe(status.UNAVAILABLE);
    expect(tls.seen.length).toBe(before);
    expectQuiet(tls.logged);
  });

  it('refuses an HTTPS client without a certificate', async () => {
    const before = tls.seen.length;
    await failure(https(tls.server.cfgd.httpPort, '/v1/status'));
    expect(tls.seen.length).toBe(before);
    expectQuiet(tls.logged);
  });

  it('refuses an HTTPS client with a certificate of another CA', async () => {
    const before = tls.seen.length;
    await failure(https(tls.server.cfgd.httpPort, '/v1/status', pki.otherClient));
    expect(tls.seen.length).toBe(before);
    expect(tls.logged).toContainEqual(
      expect.objectContaining({
        level: 20,
        msg: 'TLS handshake failed',
        certificate: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      }),
    );
    expectQuiet(tls.logged);
  });
});

describe('shutdown over TLS', () => {
  it('cuts a REST connection still in its TLS handshake when the grace period ends', async () => {
    const tls = await startTlsServer({ clientCa: true, shutdownGraceMs: 200 });
    // Connects, and never says a word: Node's HTTP server does not count it among its connections.
    const stalled = connect(tls.server.cfgd.httpPort, '127.0.0.1');
    stalled.on('error', () => {});
    stalled.resume();
    const closed = once(stalled, 'close');
    await once(stalled, 'connect');
    const started = Date.now();
    await tls.stop();
    // Without the cut, stop() waits for Node's handshake timeout: two minutes.
    expect(Date.now() - started).toBeLessThan(5000);
    await closed;
  });
});
