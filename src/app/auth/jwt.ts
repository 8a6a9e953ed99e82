import { readFile } from 'node:fs/promises';
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  errors,
  importJWK,
  importSPKI,
  importX509,
  jwtVerify,
  type CryptoKey,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose';
import { CfgdError } from '../../domain/errors.js';
import { MAX_GRANTS, parseGrant, validateGrants, type Grant } from '../../domain/grants.js';

/**
 * Offline verification of JWTs from an outside issuer (Kubernetes service-account
 * tokens, an OIDC provider): the issuer's public keys are read from a file once at
 * start, and nothing is fetched while serving.
 */
export interface JwtSettings {
  /** A JWKS file (`{"keys":[…]}`) — or — a PEM file with one public key (SPKI) or certificate. Exactly one. */
  readonly jwksFile?: string | undefined;
  readonly publicKeyFile?: string | undefined;
  /** The required `iss`. */
  readonly issuer: string;
  /** Required among the values of `aud`. */
  readonly audience: string;
  /** Optional claim holding grants as strings `verb:users/{u}/configs/{c}` (an array of strings). */
  readonly grantsClaim?: string | undefined;
  /** Leeway for exp/nbf, seconds (default 30). */
  readonly clockToleranceSec?: number | undefined;
}

export interface VerifiedJwt {
  /** The `sub` claim (required, non-empty). */
  readonly subject: string;
  /** Epoch milliseconds from `exp`; undefined when the token has none. */
  readonly expiresAt: number | undefined;
  /** Parsed from the grants claim; [] when none is configured or the token lacks it. */
  readonly claimGrants: readonly Grant[];
}

export const DEFAULT_CLOCK_TOLERANCE_SEC = 30;

/**
 * The algorithms a JWT may be signed with: asymmetric signatures only. Never `none`,
 * and never HS*: with an HMAC algorithm a public key (which anyone may hold) would
 * serve as the shared secret, so anyone could mint tokens.
 */
const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

/** jose refuses RSA keys under 2048 bits only when verifying; we refuse them when loading. */
const MIN_RSA_BITS = 2048;

/** The algorithm a JWK without `alg` is checked with when loading (verification uses the token's). */
const DEFAULT_JWK_ALGORITHM: Readonly<Record<string, string>> = {
  RSA: 'RS256',
  'EC:P-256': 'ES256',
  'EC:P-384': 'ES384',
  'EC:P-521': 'ES512',
  'OKP:Ed25519': 'EdDSA',
};

const BASE64URL = /^[A-Za-z0-9_-]+$/;

const GRANT_SHAPE = 'verb:users/{user_id}/configs/{config_name}';

export class JwtVerifier {
  private constructor(
    private readonly getKey: JWTVerifyGetKey,
    private readonly options: Readonly<{
      algorithms: readonly string[];
      issuer: string;
      audience: string;
      clockTolerance: number;
    }>,
    private readonly grantsClaim: string | undefined,
  ) {}

  /**
   * Reads and checks the key file once. Throws a plain `Error` naming the file and
   * the problem for bad settings, an unreadable file, or keys that cannot verify a
   * signature (symmetric or private keys, RSA under 2048 bits, unsupported types).
   */
  static async load(settings: JwtSettings): Promise<JwtVerifier> {
    const { jwksFile, publicKeyFile, issuer, audience, grantsClaim } = settings;
    if ((jwksFile === undefined) === (publicKeyFile === undefined)) {
      throw new Error('JWT verification needs exactly one of a JWKS file and a public key file');
    }
    if (issuer === '') throw new Error('JWT verification needs the issuer (iss) to require');
    if (audience === '') throw new Error('JWT verification needs the audience (aud) to require');
    if (grantsClaim === '') throw new Error('the JWT grants claim, when given, must be a claim name');
    const clockTolerance = settings.clockToleranceSec ?? DEFAULT_CLOCK_TOLERANCE_SEC;
    if (!Number.isFinite(clockTolerance) || clockTolerance < 0) {
      throw new Error(`the JWT clock tolerance must be a number of seconds >= 0, got ${clockTolerance}`);
    }
    const { getKey, algorithms } =
      jwksFile !== undefined ? await loadJwks(jwksFile) : await loadPem(publicKeyFile ?? '');
    return new JwtVerifier(getKey, { algorithms, issuer, audience, clockTolerance }, grantsClaim);
  }

  /**
   * The subject, expiry and grants of a JWT whose signature, issuer, audience and
   * time window check out at `now`; otherwise an `unauthenticated` CfgdError:
   * TOKEN_EXPIRED, TOKEN_NOT_YET_VALID, or TOKEN_INVALID for anything else. Its
   * message never quotes the token or its claims, and jose's error is not kept as
   * the cause: jose attaches the decoded claims to its errors, and logs must not
   * carry them.
   */
  async verify(token: string, now: Date = new Date()): Promise<VerifiedJwt> {
    const options: JWTVerifyOptions = {
      algorithms: [...this.options.algorithms],
      issuer: this.options.issuer,
      audience: this.options.audience,
      clockTolerance: this.options.clockTolerance,
      currentDate: now,
    };
    let payload: JWTPayload;
    try {
      payload = await verifyWithKeys(token, this.getKey, options);
    } catch (error: unknown) {
      throw fromJose(error);
    }
    const subject = payload.sub;
    if (typeof subject !== 'string' || subject === '') {
      throw invalid('JWT has no subject: the sub claim must be a non-empty string');
    }
    return {
      subject,
      expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
      claimGrants: this.grantsClaim === undefined ? [] : grantsFrom(this.grantsClaim, payload),
    };
  }
}

/**
 * True when `text` has the shape of a compact JWS (three base64url parts, the first
 * a JSON header with an `alg`), so the caller can route it here rather than to the
 * token table. The header check keeps an operator-chosen secret that happens to
 * contain two dots out of the JWT path.
 */
export function looksLikeJwt(text: string): boolean {
  const parts = text.split('.');
  if (parts.length !== 3) return false;
  const [header, payload, signature] = parts as [string, string, string];
  if (!BASE64URL.test(header) || !BASE64URL.test(payload) || !(signature === '' || BASE64URL.test(signature))) {
    return false;
  }
  try {
    return typeof decodeProtectedHeader(text).alg === 'string';
  } catch {
    return false;
  }
}

/**
 * jwtVerify, and when the JWKS holds several keys that fit a token without a `kid`,
 * each of them in turn (jose leaves that loop to its caller).
 */
async function verifyWithKeys(token: string, getKey: JWTVerifyGetKey, options: JWTVerifyOptions): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, getKey, options)).payload;
  } catch (error: unknown) {
    if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
    for await (const key of error) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (attempt: unknown) {
        if (!(attempt instanceof errors.JWSSignatureVerificationFailed)) throw attempt;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

/** jose's verdict as a CfgdError; anything not from jose is a fault of ours and passes through. */
function fromJose(error: unknown): unknown {
  if (error instanceof errors.JWTExpired) return new CfgdError('unauthenticated', 'TOKEN_EXPIRED', 'JWT has expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    const missing = error.reason === 'missing';
    switch (error.claim) {
      case 'nbf':
        if (error.reason === 'check_failed') {
          return new CfgdError('unauthenticated', 'TOKEN_NOT_YET_VALID', 'JWT is not valid yet (nbf is in the future)');
        }
        return invalid('JWT nbf claim is not a number');
      case 'iss':
        return invalid(missing ? 'JWT has no issuer (iss)' : 'JWT issuer is not the configured one');
      case 'aud':
        return invalid(missing ? 'JWT has no audience (aud)' : 'JWT audience does not include the configured one');
      case 'exp':
      case 'iat':
        return invalid(`JWT ${error.claim} claim is not a number`);
      default:
        return invalid('JWT claims failed validation');
    }
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return invalid('JWT signature does not verify');
  if (error instanceof errors.JWKSNoMatchingKey) {
    return invalid('JWT names no key of the configured JWKS (kid and alg must match one)');
  }
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return invalid(`JWT algorithm is not allowed: only ${ASYMMETRIC_ALGORITHMS.join(', ')} are`);
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return invalid('JWT is malformed: not a compact JWS with a JSON header and claims');
  }
  if (error instanceof errors.JOSEError) return invalid('JWT failed verification');
  return error;
}

function invalid(message: string): CfgdError {
  return new CfgdError('unauthenticated', 'TOKEN_INVALID', message);
}

/** The grants of a verified token's grants claim: an array of `verb:resource` strings, at most MAX_GRANTS. */
function grantsFrom(claim: string, payload: JWTPayload): Grant[] {
  if (!Object.hasOwn(payload, claim)) return [];
  const value = payload[claim];
  if (!Array.isArray(value) || value.length > MAX_GRANTS) {
    throw invalid(
      `JWT claim ${JSON.stringify(claim)} must be an array of at most ${MAX_GRANTS} strings ${GRANT_SHAPE}`,
    );
  }
  const grants = value.map((entry: unknown, index) => {
    const grant = typeof entry === 'string' ? tryParseGrant(`${claim}[${index}]`, entry) : undefined;
    if (grant === undefined) {
      // Neither the entry's text nor parseGrant's error (which quotes it) goes along: it is the token's content.
      throw invalid(`JWT claim ${JSON.stringify(claim)} entry ${index} is not a grant ${GRANT_SHAPE}`);
    }
    return grant;
  });
  // Only drops duplicates: every grant is valid and there are at most MAX_GRANTS.
  return validateGrants(claim, grants);
}

function tryParseGrant(field: string, text: string): Grant | undefined {
  try {
    return parseGrant(field, text);
  } catch (error: unknown) {
    if (error instanceof CfgdError) return undefined;
    throw error;
  }
}

interface LoadedKeys {
  readonly getKey: JWTVerifyGetKey;
  readonly algorithms: readonly string[];
}

async function readKeyFile(kind: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error: unknown) {
    throw new Error(`cannot read the JWT ${kind} file ${path}: ${messageOf(error)}`, { cause: error });
  }
}

/**
 * A JWKS file, every member checked now (createLocalJWKSet imports them lazily, so a
 * bad key would otherwise first show up as a failed request).
 */
async function loadJwks(path: string): Promise<LoadedKeys> {
  const text = await readKeyFile('JWKS', path);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error: unknown) {
    throw new Error(`the JWT JWKS file ${path} is not JSON: ${messageOf(error)}`, { cause: error });
  }
  const keys: unknown = isObject(parsed) ? parsed.keys : undefined;
  if (!Array.isArray(keys)) throw new Error(`the JWT JWKS file ${path} must be a JSON object {"keys": [...]}`);
  let signingKeys = 0;
  for (const [index, key] of (keys as unknown[]).entries()) {
    const kid = isObject(key) && typeof key.kid === 'string' ? ` (kid ${JSON.stringify(key.kid)})` : '';
    const where = `the JWT JWKS file ${path}, key ${index}${kid}`;
    if (!isObject(key) || typeof key.kty !== 'string') throw new Error(`${where}: not a JWK with a "kty"`);
    // createLocalJWKSet skips encryption keys too.
    if (key.use !== undefined && key.use !== 'sig') continue;
    await checkJwk(where, { ...key, kty: key.kty });
    signingKeys += 1;
  }
  if (signingKeys === 0) throw new Error(`the JWT JWKS file ${path} holds no signature keys`);
  let jwks: ReturnType<typeof createLocalJWKSet>;
  try {
    jwks = createLocalJWKSet(parsed as JSONWebKeySet);
  } catch (error: unknown) {
    throw new Error(`the JWT JWKS file ${path} is not a JWKS: ${messageOf(error)}`, { cause: error });
  }
  return { getKey: jwks, algorithms: ASYMMETRIC_ALGORITHMS };
}

/** One JWKS member, checked by importing it for its `alg` (or its type's usual one). */
async function checkJwk(where: string, key: Record<string, unknown> & { kty: string }): Promise<void> {
  if (key.kty === 'oct') {
    throw new Error(`${where}: a symmetric key (kty "oct"); JWT verification takes public keys only`);
  }
  if (key.d !== undefined) throw new Error(`${where}: a private key; give the public key only`);
  if (key.alg !== undefined && typeof key.alg !== 'string') throw new Error(`${where}: "alg" is not a string`);
  const type = key.kty === 'RSA' ? 'RSA' : `${key.kty}:${typeof key.crv === 'string' ? key.crv : ''}`;
  const alg = key.alg ?? DEFAULT_JWK_ALGORITHM[type];
  if (alg === undefined) throw new Error(`${where}: unsupported key type ${type}`);
  if (!(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new Error(`${where}: alg ${alg} is not allowed; only ${ASYMMETRIC_ALGORITHMS.join(', ')} are`);
  }
  let imported: CryptoKey | Uint8Array;
  try {
    imported = await importJWK(key, alg);
  } catch (error: unknown) {
    throw new Error(`${where}: not a usable ${alg} key: ${messageOf(error)}`, { cause: error });
  }
  if (!(imported instanceof Uint8Array)) checkRsaSize(where, imported);
}

/**
 * A PEM file with one SPKI public key or one certificate. The key is imported once
 * for each algorithm it can verify (an RSA key serves RS* and PS*, an EC key the
 * ES* of its curve), and a token may use only those.
 */
async function loadPem(path: string): Promise<LoadedKeys> {
  const text = await readKeyFile('public key', path);
  const where = `the JWT public key file ${path}`;
  const blocks = text.match(/-----BEGIN [A-Z0-9 ]+-----/g) ?? [];
  if (blocks.length !== 1) {
    throw new Error(`${where} must hold exactly one PEM block (a public key or a certificate), found ${blocks.length}`);
  }
  const label = blocks[0];
  let importAs: (alg: string) => Promise<CryptoKey>;
  if (label === '-----BEGIN CERTIFICATE-----') {
    importAs = (alg) => importX509(text, alg);
  } else if (label === '-----BEGIN PUBLIC KEY-----') {
    importAs = (alg) => importSPKI(text, alg);
  } else {
    const hint = label?.includes('PRIVATE') ? ': it holds a private key; give the public key' : '';
    throw new Error(`${where} must be a PEM "PUBLIC KEY" (SPKI) or "CERTIFICATE", not ${label}${hint}`);
  }
  const keys = new Map<string, CryptoKey>();
  const failures: string[] = [];
  for (const alg of ASYMMETRIC_ALGORITHMS) {
    try {
      keys.set(alg, await importAs(alg));
    } catch (error: unknown) {
      failures.push(`${alg}: ${messageOf(error)}`);
    }
  }
  const first = keys.values().next();
  if (first.done === true) {
    throw new Error(`${where} holds no key usable for ${ASYMMETRIC_ALGORITHMS.join(', ')} (${failures.join('; ')})`);
  }
  checkRsaSize(where, first.value);
  const getKey: JWTVerifyGetKey = (header) => {
    const key = keys.get(header.alg ?? '');
    // Unreachable while `algorithms` lists exactly the keys' algorithms; a guard, not a path.
    if (key === undefined) throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
    return key;
  };
  return { getKey, algorithms: [...keys.keys()] };
}

function checkRsaSize(where: string, key: CryptoKey): void {
  const { modulusLength } = key.algorithm as { modulusLength?: unknown };
  if (typeof modulusLength === 'number' && modulusLength < MIN_RSA_BITS) {
    throw new Error(`${where}: an RSA key of ${modulusLength} bits; at least ${MIN_RSA_BITS} are required`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
