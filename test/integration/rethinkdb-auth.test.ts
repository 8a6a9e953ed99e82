/**
 * Authentication across nodes of one RethinkDB database, with two cfgd
 * server processes: a token created through node A works on node B at once,
 * and revoking it through A ends B's open gRPC and SSE watch streams. Both
 * processes' logs are then searched for every secret the test used.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthClient, bearer, grantsOn, grpcWatchWith, TEST_ADMIN_TOKEN } from '../helpers/auth.js';
import { http, sendJson } from '../helpers/http.js';
import { spawnCfgd, type CfgdProcess } from '../helpers/process.js';
import { freshDatabase, rethinkStoreUrl } from '../helpers/rethinkdb.js';
import { SseClient } from '../helpers/sse.js';

let nodeA: CfgdProcess;
let nodeB: CfgdProcess;
const secretsUsed: string[] = [TEST_ADMIN_TOKEN];

beforeAll(async () => {
  const db = freshDatabase('auth');
  const env = { CFGD_AUTH: 'on', CFGD_ADMIN_TOKEN: TEST_ADMIN_TOKEN, CFGD_LOG_LEVEL: 'debug' };
  // Node A installs the admin token; node B finds it in the store.
  nodeA = await spawnCfgd(['--store', rethinkStoreUrl(db)], env);
  nodeB = await spawnCfgd(['--store', rethinkStoreUrl(db)], { CFGD_AUTH: 'on', CFGD_LOG_LEVEL: 'debug' });
});

afterAll(async () => {
  for (const node of [nodeA, nodeB]) node?.child.kill('SIGTERM');
  await Promise.all([nodeA, nodeB].map((node) => node?.exited));
});

describe('tokens across cfgd nodes on RethinkDB', () => {
  it('a token made through node A works on node B at once; revoking it through A ends its streams on B', async () => {
    const adminA = new AuthClient(nodeA.grpcPort, bearer(TEST_ADMIN_TOKEN));
    const token = await adminA.createToken({ name: 'sidecar', grants: grantsOn('tenant', 'read', 'write', 'watch') });
    secretsUsed.push(token.secret);
    // Straight to node B: no waiting for B's feed to bring the token.
    const put = await sendJson(
      nodeB.httpPort,
      'PUT',
      '/v1/users/tenant/configs/app',
      { a: 1 },
      {
        authorization: bearer(token.secret),
      },
    );
    expect(put.status).toBe(200);
    expect(put.json.audit_entry.author).toBe('token:sidecar');

    const grpc = grpcWatchWith(nodeB.grpcPort, bearer(token.secret), 'tenant', 'app');
    await grpc.first;
    const { client: sse, res } = await SseClient.open(nodeB.httpPort, '/v1/users/tenant/configs:watch', {
      authorization: bearer(token.secret),
    });
    expect(res.statusCode).toBe(200);
    await sse.until((c) => c.messages().length > 0);

    const revokedAt = Date.now();
    await adminA.revokeToken(token.id);
    const ended = await grpc.ended(revokedAt);
    expect(ended).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_REVOKED' });
    await sse.until((c) => c.events.some((e) => e.event === 'error'));
    const error = JSON.parse(sse.events.find((e) => e.event === 'error')!.data).error;
    expect(error).toMatchObject({ status: 'UNAUTHENTICATED', details: [{ reason: 'TOKEN_REVOKED' }] });
    sse.close();
    // The revocation was pushed to B, not polled: B ended the stream well within a second.
    console.log(`node B ended the revoked gRPC stream ${ended.afterMs} ms after the revocation began on node A`);

    const refused = await http(nodeB.httpPort, 'GET', '/v1/users/tenant/configs/app', {
      headers: { authorization: bearer(token.secret) },
    });
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toBe('Bearer realm="cfgd", error="invalid_token"');
    adminA.close();
  });

  it("a token's expiry ends its stream on node B, where it was not created", async () => {
    const adminA = new AuthClient(nodeA.grpcPort, bearer(TEST_ADMIN_TOKEN));
    const brief = await adminA.createToken({
      name: 'brief',
      grants: grantsOn('tenant', 'watch'),
      ttl: { seconds: 2, nanos: 0 },
    });
    secretsUsed.push(brief.secret);
    adminA.close();
    const stream = grpcWatchWith(nodeB.grpcPort, bearer(brief.secret), 'tenant', 'app');
    await stream.first;
    expect(await stream.ended(Date.now())).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'TOKEN_EXPIRED' });
  });

  it("never writes a secret it was sent into either node's log", async () => {
    // A few refusals too: errors are where secrets leak.
    const bogus = `cfgd_${'x'.repeat(43)}`;
    secretsUsed.push(bogus);
    await http(nodeB.httpPort, 'GET', '/v1/whoami', { headers: { authorization: bearer(bogus) } });
    await http(nodeA.httpPort, 'GET', '/v1/whoami', {
      headers: { authorization: `Basic ${Buffer.from(`:${bogus}`).toString('base64')}` },
    });
    const logs = JSON.stringify([...nodeA.logs, ...nodeB.logs]);
    expect(nodeA.logs.length + nodeB.logs.length).toBeGreaterThan(4);
    for (const secret of secretsUsed) expect(logs).not.toContain(secret);
    for (const secret of secretsUsed) expect(logs).not.toContain(Buffer.from(`:${secret}`).toString('base64'));
  });

  it('refuses to start a node with auth on a fresh database without --admin-token: there is no directory for one', async () => {
    await expect(
      spawnCfgd(['--store', rethinkStoreUrl(freshDatabase('noadmin'))], { CFGD_AUTH: 'on' }),
    ).rejects.toThrow(/store has no admin token; start one node with --admin-token/);
  });
});
