import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT, exportJWK, exportPKCS8, exportSPKI, generateKeyPair, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JwtVerifier, looksLikeJwt, type JwtSettings } from '../../src/app/auth/jwt.js';
import { CfgdError, type ErrorReason } from '../../src/domain/errors.js';
import { issueCertificate } from '../helpers/certs.js';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const AUDIENCE = 'cfgd';
/** A subject distinctive enough that finding it in a message means the message leaked it. */
const SUBJECT = 'system:serviceaccount:payments:api-7f3c';
const NOW = new Date('2030-01-01T00:00:00Z');
const NOW_SEC = NOW.getTime() / 1000;

interface Pair {
  publicKey: CryptoKey;
  privateKey: CryptoKey;
}

let dir: string;
let rsa: Pair;
let es: Pair;
let esPem: string;
let jwksFile: string;
let pemFile: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cfgd-jwt-'));
  rsa = await generateKeyPair('RS256', { extractable: true });
  es = await generateKeyPair('ES256', { extractable: true });
  jwksFile = write('jwks.json', JSON.stringify({ keys: [await publicJwk(rsa, { kid: 'rs-1', alg: 'RS256' })] }));
  esPem = await exportSPKI(es.publicKey);
  pemFile = write('es256.pem', esPem);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

async function publicJwk(pair: Pair, extra: Record<string, string>): Promise<Record<string, unknown>> {
  return { ...(await exportJWK(pair.publicKey)), use: 'sig', ...extra };
}

function settings(extra: Partial<JwtSettings>): JwtSettings {
  return { issuer: ISSUER, audience: AUDIENCE, ...extra };
}

/** Claims to add to a token, or to leave out (undefined). */
type Claims = Record<string, unknown>;

/** A token signed at NOW, valid for an hour, with the configured issuer and audience unless `claims` say otherwise. */
async function sign(
  key: CryptoKey | Uint8Array,
  header: { alg: string; kid?: string },
  claims: Claims = {},
): Promise<string> {
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: SUBJECT, iat: NOW_SEC, exp: NOW_SEC + 3600, ...claims })
    .setProtectedHeader(header)
    .sign(key);
}

const signRsa = (claims: Claims = {}) => sign(rsa.privateKey, { alg: 'RS256', kid: 'rs-1' }, claims);
const signEs = (claims: Claims = {}) => sign(es.privateKey, { alg: 'ES256' }, claims);

/** The CfgdError `verify` rejects with, after checking it leaks neither the token nor its subject. */
async function rejection(verifier: JwtVerifier, token: string, reason: ErrorReason, message?: RegExp) {
  let caught: unknown;
  try {
    await verifier.verify(token, NOW);
  } catch (error: unknown) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(CfgdError);
  const error = caught as CfgdError;
  expect(error.kind).toBe('unauthenticated');
  expect(error.reason).toBe(reason);
  if (message !== undefined) expect(error.message).toMatch(message);
  if (token !== '') expect(error.message).not.toContain(token);
  for (const part of token.split('.').filter((p) => p.length > 8)) expect(error.message).not.toContain(part);
  expect(error.message).not.toContain(SUBJECT);
  // jose's errors carry the decoded claims; none may ride along as the cause into a log.
  expect(error.cause).toBeUndefined();
  return error;
}

describe('JwtVerifier with a JWKS (RS256)', () => {
  let verifier: JwtVerifier;
  beforeAll(async () => {
    verifier = await JwtVerifier.load(settings({ jwksFile }));
  });

  it('returns the subject and expiry of a valid token, and no grants when no claim is configured', async () => {
    const token = await signRsa({ grants: ['read:users/a/configs/b'] });
    await expect(verifier.verify(token, NOW)).resolves.toEqual({
      subject: SUBJECT,
      expiresAt: (NOW_SEC + 3600) * 1000,
      claimGrants: [],
    });
  });

  it('accepts an audience array that includes the configured audience, and a token without exp', async () => {
    const token = await signRsa({ aud: ['other', AUDIENCE], exp: undefined });
    await expect(verifier.verify(token, NOW)).resolves.toMatchObject({ subject: SUBJECT, expiresAt: undefined });
  });

  it('rejects an expired token as TOKEN_EXPIRED, with 30 s of leeway by default', async () => {
    await rejection(verifier, await signRsa({ exp: NOW_SEC - 31 }), 'TOKEN_EXPIRED', /expired/);
    await expect(verifier.verify(await signRsa({ exp: NOW_SEC - 29 }), NOW)).resolves.toMatchObject({
      subject: SUBJECT,
    });
  });

  it('rejects a token whose nbf is in the future as TOKEN_NOT_YET_VALID', async () => {
    await rejection(verifier, await signRsa({ nbf: NOW_SEC + 120 }), 'TOKEN_NOT_YET_VALID', /not valid yet/);
  });

  it('uses the clock it is given', async () => {
    const token = await signRsa({ nbf: NOW_SEC + 120, exp: NOW_SEC + 600 });
    await expect(verifier.verify(token, new Date((NOW_SEC + 300) * 1000))).resolves.toMatchObject({
      subject: SUBJECT,
    });
    await expect(verifier.verify(token, new Date((NOW_SEC + 700) * 1000))).rejects.toMatchObject({
      reason: 'TOKEN_EXPIRED',
    });
  });

  it('honours a configured clock tolerance', async () => {
    const strict = await JwtVerifier.load(settings({ jwksFile, clockToleranceSec: 0 }));
    await rejection(strict, await signRsa({ exp: NOW_SEC - 1 }), 'TOKEN_EXPIRED');
  });

  it('rejects a wrong or missing issuer', async () => {
    await rejection(verifier, await signRsa({ iss: 'https://evil.example' }), 'TOKEN_INVALID', /issuer is not/);
    await rejection(verifier, await signRsa({ iss: undefined }), 'TOKEN_INVALID', /no issuer/);
  });

  it('rejects a wrong or missing audience', async () => {
    await rejection(verifier, await signRsa({ aud: 'someone-else' }), 'TOKEN_INVALID', /audience does not/);
    await rejection(verifier, await signRsa({ aud: undefined }), 'TOKEN_INVALID', /no audience/);
  });

  it('rejects a token whose payload was tampered with', async () => {
    const [header, payload, signature] = (await signRsa()).split('.') as [string, string, string];
    const middle = Math.floor(payload.length / 2);
    const flipped = payload[middle] === 'A' ? 'B' : 'A';
    const tampered = `${header}.${payload.slice(0, middle)}${flipped}${payload.slice(middle + 1)}.${signature}`;
    await rejection(verifier, tampered, 'TOKEN_INVALID', /signature/);
  });

  it('rejects a payload swapped for one with another subject', async () => {
    const [header, , signature] = (await signRsa()).split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'admin' })).toString('base64url');
    await rejection(verifier, `${header}.${forged}.${signature}`, 'TOKEN_INVALID', /signature/);
  });

  it('rejects a token signed by another key under the same kid', async () => {
    const other = await generateKeyPair('RS256');
    await rejection(
      verifier,
      await sign(other.privateKey, { alg: 'RS256', kid: 'rs-1' }),
      'TOKEN_INVALID',
      /signature/,
    );
  });

  it('rejects a kid the JWKS does not hold', async () => {
    await rejection(verifier, await sign(rsa.privateKey, { alg: 'RS256', kid: 'rs-2' }), 'TOKEN_INVALID', /no key/);
  });

  it('rejects an unsigned alg:none token', async () => {
    const token = new UnsecuredJWT({ iss: ISSUER, aud: AUDIENCE, sub: SUBJECT, exp: NOW_SEC + 3600 }).encode();
    await rejection(verifier, token, 'TOKEN_INVALID', /algorithm is not allowed/);
  });

  it('rejects an HS256 token keyed with the public JWK', async () => {
    const secret = new TextEncoder().encode(JSON.stringify(await publicJwk(rsa, { kid: 'rs-1' })));
    await rejection(verifier, await sign(secret, { alg: 'HS256', kid: 'rs-1' }), 'TOKEN_INVALID', /algorithm/);
  });

  it('rejects a token without a subject, or with an empty one', async () => {
    await rejection(verifier, await signRsa({ sub: undefined }), 'TOKEN_INVALID', /sub/);
    await rejection(verifier, await signRsa({ sub: '' }), 'TOKEN_INVALID', /sub/);
  });

  it('rejects text that is not a JWS', async () => {
    for (const text of ['', 'cfgd_abc', 'a.b.c', 'eyJhbGciOiJSUzI1NiJ9.e30', `${await signRsa()}.extra`]) {
      await rejection(verifier, text, 'TOKEN_INVALID', /malformed/);
    }
  });

  it('tries each key of the set that fits a token without a kid', async () => {
    const first = await generateKeyPair('ES256', { extractable: true });
    const second = await generateKeyPair('ES256', { extractable: true });
    const file = write('two.json', JSON.stringify({ keys: [await publicJwk(first, {}), await publicJwk(second, {})] }));
    const two = await JwtVerifier.load(settings({ jwksFile: file }));
    await expect(two.verify(await sign(second.privateKey, { alg: 'ES256' }), NOW)).resolves.toMatchObject({
      subject: SUBJECT,
    });
    const stranger = await generateKeyPair('ES256');
    await rejection(two, await sign(stranger.privateKey, { alg: 'ES256' }), 'TOKEN_INVALID', /signature/);
  });
});

describe('JwtVerifier with a PEM key (ES256)', () => {
  let verifier: JwtVerifier;
  beforeAll(async () => {
    verifier = await JwtVerifier.load(settings({ publicKeyFile: pemFile }));
  });

  it('returns the subject and expiry of a valid token', async () => {
    await expect(verifier.verify(await signEs(), NOW)).resolves.toEqual({
      subject: SUBJECT,
      expiresAt: (NOW_SEC + 3600) * 1000,
      claimGrants: [],
    });
  });

  it('rejects a token signed by another key', async () => {
    const other = await generateKeyPair('ES256');
    await rejection(verifier, await sign(other.privateKey, { alg: 'ES256' }), 'TOKEN_INVALID', /signature/);
  });

  it('rejects an algorithm the key does not serve', async () => {
    const other = await generateKeyPair('RS256');
    await rejection(verifier, await sign(other.privateKey, { alg: 'RS256' }), 'TOKEN_INVALID', /algorithm/);
  });

  it('rejects an HS256 token keyed with the PEM text (the key-confusion attack)', async () => {
    const token = await sign(new TextEncoder().encode(esPem), { alg: 'HS256' });
    await rejection(verifier, token, 'TOKEN_INVALID', /algorithm is not allowed/);
  });

  it('rejects an unsigned alg:none token', async () => {
    const token = new UnsecuredJWT({ iss: ISSUER, aud: AUDIENCE, sub: SUBJECT }).encode();
    await rejection(verifier, token, 'TOKEN_INVALID', /algorithm is not allowed/);
  });

  it('verifies RS256 and PS256 with an RSA key', async () => {
    const file = write('rsa.pem', await exportSPKI(rsa.publicKey));
    const rsaVerifier = await JwtVerifier.load(settings({ publicKeyFile: file }));
    await expect(rsaVerifier.verify(await sign(rsa.privateKey, { alg: 'RS256' }), NOW)).resolves.toMatchObject({
      subject: SUBJECT,
    });
    const ps = await generateKeyPair('PS256', { extractable: true });
    const psVerifier = await JwtVerifier.load(
      settings({ publicKeyFile: write('ps.pem', await exportSPKI(ps.publicKey)) }),
    );
    await expect(psVerifier.verify(await sign(ps.privateKey, { alg: 'PS256' }), NOW)).resolves.toMatchObject({
      subject: SUBJECT,
    });
  });

  it('verifies with the key of a certificate PEM', async () => {
    const cert = await issueCertificate(es, '/CN=cfgd-test', 'client');
    const certFile = write('es-cert.pem', cert.toString('pem'));
    const fromCert = await JwtVerifier.load(settings({ publicKeyFile: certFile }));
    await expect(fromCert.verify(await signEs(), NOW)).resolves.toMatchObject({ subject: SUBJECT });
    const other = await generateKeyPair('ES256');
    await rejection(fromCert, await sign(other.privateKey, { alg: 'ES256' }), 'TOKEN_INVALID', /signature/);
  });
});

describe('the grants claim', () => {
  let verifier: JwtVerifier;
  beforeAll(async () => {
    verifier = await JwtVerifier.load(settings({ publicKeyFile: pemFile, grantsClaim: 'cfgd/grants' }));
  });

  it('parses the grants, dropping duplicates', async () => {
    const token = await signEs({
      'cfgd/grants': ['read:users/alice/configs/*', 'write:users/alice/configs/app', 'read:users/alice/configs/*'],
    });
    await expect(verifier.verify(token, NOW)).resolves.toMatchObject({
      claimGrants: [
        { verb: 'read', resource: 'users/alice/configs/*' },
        { verb: 'write', resource: 'users/alice/configs/app' },
      ],
    });
  });

  it('gives no grants when the token lacks the claim', async () => {
    await expect(verifier.verify(await signEs(), NOW)).resolves.toMatchObject({ claimGrants: [] });
  });

  it('rejects a claim with an entry that is not a grant, without quoting it', async () => {
    const bad = 'delete:users/alice/configs/app';
    const error = await rejection(
      verifier,
      await signEs({ 'cfgd/grants': ['read:users/alice/configs/app', bad] }),
      'TOKEN_INVALID',
      /"cfgd\/grants" entry 1 is not a grant/,
    );
    expect(error.message).not.toContain(bad);
    await rejection(verifier, await signEs({ 'cfgd/grants': ['read:nowhere'] }), 'TOKEN_INVALID', /entry 0/);
    await rejection(verifier, await signEs({ 'cfgd/grants': [42] }), 'TOKEN_INVALID', /entry 0/);
  });

  it('rejects a claim that is not an array', async () => {
    const token = await signEs({ 'cfgd/grants': 'read:users/alice/configs/app' });
    await rejection(verifier, token, 'TOKEN_INVALID', /must be an array/);
  });
});

describe('JwtVerifier.load', () => {
  it('needs exactly one key file', async () => {
    await expect(JwtVerifier.load(settings({}))).rejects.toThrow(/exactly one/);
    await expect(JwtVerifier.load(settings({ jwksFile, publicKeyFile: pemFile }))).rejects.toThrow(/exactly one/);
  });

  it('names a file it cannot read', async () => {
    const missing = join(dir, 'missing.json');
    await expect(JwtVerifier.load(settings({ jwksFile: missing }))).rejects.toThrow(
      `cannot read the JWT JWKS file ${missing}`,
    );
  });

  it('refuses a JWKS that is not one, or holds a symmetric or private key', async () => {
    const load = (name: string, text: string) => JwtVerifier.load(settings({ jwksFile: write(name, text) }));
    await expect(load('not-json.json', '{keys')).rejects.toThrow(/not JSON/);
    await expect(load('no-keys.json', '{"kid":"x"}')).rejects.toThrow(/\{"keys": \[\.\.\.\]\}/);
    await expect(load('empty.json', '{"keys":[]}')).rejects.toThrow(/no signature keys/);
    await expect(load('oct.json', JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }))).rejects.toThrow(
      /symmetric/,
    );
    const privateJwk = await exportJWK(rsa.privateKey);
    await expect(load('private.json', JSON.stringify({ keys: [privateJwk] }))).rejects.toThrow(/private key/);
    await expect(
      load('hs.json', JSON.stringify({ keys: [{ ...(await exportJWK(es.publicKey)), alg: 'HS256' }] })),
    ).rejects.toThrow(/alg HS256 is not allowed/);
  });

  it('refuses a PEM that is not one public key or certificate, and RSA keys under 2048 bits', async () => {
    const load = (name: string, text: string) => JwtVerifier.load(settings({ publicKeyFile: write(name, text) }));
    await expect(load('garbage.pem', 'hello')).rejects.toThrow(/exactly one PEM block/);
    await expect(load('two.pem', esPem + esPem)).rejects.toThrow(/exactly one PEM block .*, found 2/);
    await expect(load('private.pem', await exportPKCS8(es.privateKey))).rejects.toThrow(/private key/);
    await expect(load('broken.pem', esPem.replace(/[A-Za-z]{8}/, 'AAAAAAAA'))).rejects.toThrow(/no key usable/);
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' });
    await expect(load('small.pem', small.toString())).rejects.toThrow(/1024 bits/);
  });

  it('refuses a negative clock tolerance', async () => {
    await expect(JwtVerifier.load(settings({ jwksFile, clockToleranceSec: -1 }))).rejects.toThrow(/tolerance/);
  });
});

describe('looksLikeJwt', () => {
  it('is true for a compact JWS, signed or not', async () => {
    expect(looksLikeJwt(await signRsa())).toBe(true);
    expect(looksLikeJwt(new UnsecuredJWT({ sub: 'x' }).encode())).toBe(true);
  });

  it('is false for cfgd tokens and other text', () => {
    for (const text of [
      'cfgd_9Qx2b7Yw3kLm0pZr5TnVa8CdEfGhIjKlMnOpQrStUv',
      '',
      'a.b',
      'a.b.c',
      'operator.chosen.secret-of-at-least-32-chars',
      'eyJhbGciOiJSUzI1NiJ9..sig',
      'eyJ0eXAiOiJKV1QifQ.e30.sig',
      'eyJhbGciOiJSUzI1NiJ9.e30.sig.more',
      'eyJhbGciOiJSUzI1NiJ9.e3+.sig',
    ]) {
      expect(looksLikeJwt(text), text).toBe(false);
    }
  });
});
