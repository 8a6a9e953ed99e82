/**
 * Seeded fuzzing of what callers present as credentials, on both transports,
 * with authentication on: any `authorization` value that is not a valid
 * credential is UNAUTHENTICATED (401 with a Bearer challenge on REST), never
 * another error, never logged, and the server keeps answering. Replay a
 * failure with the printed CFGD_FUZZ_SEED.
 */
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthServiceClient } from '../../generated/cfgd/v1/auth_service.js';
import { credentials as grpcCredentials, type ServiceError } from '@grpc/grpc-js';
import { DEFAULTS } from '../../src/settings/settings.js';
import { bearer, grpcOutcome, TEST_ADMIN_TOKEN, unary } from '../helpers/auth.js';
import { fuzzSettings } from '../helpers/fuzz-support.js';
import { http } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const { seed, runs, timeoutMs } = fuzzSettings('fuzz-auth', 150);
const lines: string[] = [];
let server: TestServer;
let client: AuthServiceClient;

beforeAll(async () => {
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  server = await startTestServer(
    { auth: { ...DEFAULTS.auth, mode: 'on', adminToken: TEST_ADMIN_TOKEN } },
    'normal',
    log,
  );
  client = new AuthServiceClient(`127.0.0.1:${server.cfgd.grpcPort}`, grpcCredentials.createInsecure());
});

afterAll(async () => {
  client.close();
  await server.stop();
});

const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 300,
});
/** Header values: random text, and near misses of the forms cfgd accepts. */
const header = fc
  .oneof(
    printable,
    printable.map((text) => `Bearer ${text}`),
    printable.map((text) => `bearer  ${text}`),
    printable.map((text) => `Basic ${Buffer.from(text).toString('base64')}`),
    printable.map((text) => `Basic ${Buffer.from(`:${text}`).toString('base64')}`),
    printable.map((text) => `Basic ${text}`),
    fc.base64String({ maxLength: 200 }).map((text) => `Bearer cfgd_${text}`),
    fc.tuple(fc.base64String(), fc.base64String(), fc.base64String()).map((parts) => `Bearer ${parts.join('.')}`),
    printable.map((text) => `Bearer ${TEST_ADMIN_TOKEN}${text.length > 0 ? text : 'x'}`),
  )
  .filter((value) => value.trim() === value && !value.includes(TEST_ADMIN_TOKEN + ' '));

describe('fuzzed credentials', () => {
  it(
    'are refused with UNAUTHENTICATED on REST and gRPC, and never reach a log',
    async () => {
      const presented: string[] = [];
      await fc.assert(
        fc.asyncProperty(header, async (value) => {
          presented.push(value);
          const rest = await http(server.cfgd.httpPort, 'GET', '/v1/whoami', { headers: { authorization: value } });
          expect(rest.status, value).toBe(401);
          expect(rest.headers['www-authenticate'], value).toMatch(/^Bearer realm="cfgd"/);
          expect(rest.json.error.status).toBe('UNAUTHENTICATED');
          let outcome;
          try {
            await unary(client.whoAmI.bind(client), {}, value);
            outcome = { code: 'OK' };
          } catch (error: unknown) {
            outcome = grpcOutcome(error as ServiceError);
          }
          expect(outcome.code, value).toBe('UNAUTHENTICATED');
        }),
        { seed, numRuns: runs },
      );
      // Still answering, to the right credential.
      const ok = await http(server.cfgd.httpPort, 'GET', '/v1/whoami', {
        headers: { authorization: bearer(TEST_ADMIN_TOKEN) },
      });
      expect(ok.json.principal).toBe('token:admin');
      const logged = lines.join('\n');
      expect(lines.some((line) => line.includes('"level":50'))).toBe(false);
      for (const value of presented) {
        const secret = value.replace(/^\S+ +/, '');
        if (secret.length >= 16) expect(logged).not.toContain(secret);
      }
    },
    timeoutMs,
  );
});
