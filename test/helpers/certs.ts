import { KeyObject, randomBytes, webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @peculiar/x509's dependency injection (tsyringe) needs a Reflect metadata polyfill loaded before it.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

// Node's WebCrypto, not whatever `globalThis.crypto` a test environment puts in its place.
x509.cryptoProvider.set(webcrypto);

/** A PEM file as its path (for settings) and its contents (for clients). */
export interface PemFile {
  readonly file: string;
  readonly pem: Buffer;
}

/** A certificate and its private key. */
export interface KeyPair {
  readonly cert: PemFile;
  readonly key: PemFile;
}

/** Test PKI: two unrelated CAs, a server certificate and client certificates, in a temp dir. */
export interface TestPki {
  readonly dir: string;
  /** The CA that signs the server certificate and the clients of `clientCertificate`. */
  readonly ca: PemFile;
  /** For 127.0.0.1 and localhost (SAN IP and DNS), signed by `ca`. */
  readonly server: KeyPair;
  /** A CA unrelated to `ca`. */
  readonly otherCa: PemFile;
  /** A client certificate `otherCa` signed (`/CN=intruder/O=elsewhere`). */
  readonly otherClient: KeyPair;
  /** A client certificate `ca` signs, with `subject` in the slash form `/CN=payments/O=acme` (attributes in that order). */
  clientCertificate(subject: string): Promise<KeyPair>;
  /** Removes the directory. */
  cleanup(): void;
}

const EC_P256: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const ECDSA_SHA256: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const HOUR_MS = 60 * 60 * 1000;

/** A new EC P-256 key pair (ES256), extractable so its private key can be written as PKCS#8. */
async function ecKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
}

/**
 * A distinguished name from its slash form, `/CN=payments/O=acme`, its attributes in the order written
 * (`\/` for a slash in a value).
 */
function parseSubject(subject: string): x509.JsonName {
  if (!subject.startsWith('/')) throw new Error(`subject must start with "/": ${subject}`);
  return subject
    .slice(1)
    .split(/(?<!\\)\//)
    .map((part) => {
      const eq = part.indexOf('=');
      if (eq <= 0) throw new Error(`subject attribute must be TYPE=value: ${part} (in ${subject})`);
      return { [part.slice(0, eq)]: [part.slice(eq + 1).replaceAll('\\/', '/')] };
    });
}

/** A positive 128-bit serial number in hex, its top byte non-zero (a minimal DER INTEGER). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return bytes.toString('hex');
}

/** What a certificate is for: its basic constraints, key usage and extended key usage. */
export type Profile = 'ca' | 'server' | 'client';

/** The signer of a certificate: a CA's certificate and private key. */
export interface Issuer {
  readonly cert: x509.X509Certificate;
  readonly privateKey: webcrypto.CryptoKey;
}

/**
 * A certificate for `keys.publicKey`, valid from an hour ago for a day, signed with ECDSA SHA-256 by `issuer`,
 * or by `keys.privateKey` itself (self-signed) without one.
 */
export async function issueCertificate(
  keys: webcrypto.CryptoKeyPair,
  subject: string,
  profile: Profile,
  issuer?: Issuer,
): Promise<x509.X509Certificate> {
  const now = Date.now();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(profile === 'ca', undefined, true),
    new x509.KeyUsagesExtension(
      profile === 'ca'
        ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
        : x509.KeyUsageFlags.digitalSignature,
      true,
    ),
  ];
  if (profile === 'server') {
    extensions.push(
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'ip', value: '127.0.0.1' },
        { type: 'dns', value: 'localhost' },
      ]),
    );
  } else if (profile === 'client') {
    extensions.push(new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]));
  }
  extensions.push(await x509.SubjectKeyIdentifierExtension.create(keys.publicKey));
  if (issuer !== undefined) {
    extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuer.cert.publicKey));
  }
  const name = parseSubject(subject);
  return x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: name,
    // The issuer's subject as it was encoded, so that the names compare equal byte for byte.
    issuer: issuer === undefined ? name : issuer.cert.subjectName,
    notBefore: new Date(now - HOUR_MS),
    notAfter: new Date(now + 24 * HOUR_MS),
    signingAlgorithm: ECDSA_SHA256,
    publicKey: keys.publicKey,
    signingKey: issuer === undefined ? keys.privateKey : issuer.privateKey,
    extensions,
  });
}

/** A private key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`). */
function pkcs8Pem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Creates the PKI in JS (WebCrypto, EC P-256 keys: each certificate takes milliseconds). */
export async function createTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'cfgd-pki-'));
  let issued = 0;

  /** Writes a PEM file into the PKI's directory. */
  function write(name: string, text: string, mode: number): PemFile {
    const file = join(dir, name);
    const pem = Buffer.from(text, 'utf8');
    writeFileSync(file, pem, { mode });
    return { file, pem };
  }

  /** A key and a certificate, self-signed or signed by `issuer`, as files and as x509 objects for signing. */
  async function issue(
    name: string,
    subject: string,
    profile: Profile,
    issuer?: Issuer,
  ): Promise<KeyPair & { readonly signer: Issuer }> {
    const keys = await ecKeyPair();
    const cert = await issueCertificate(keys, subject, profile, issuer);
    return {
      cert: write(`${name}.pem`, cert.toString('pem'), 0o644),
      key: write(`${name}.key`, pkcs8Pem(keys.privateKey), 0o600),
      signer: { cert, privateKey: keys.privateKey },
    };
  }

  /** Only the files of what `issue` made. */
  const files = ({ cert, key }: KeyPair): KeyPair => ({ cert, key });

  try {
    const [ca, otherCa] = await Promise.all([
      issue('ca', '/CN=cfgd test CA', 'ca'),
      issue('other-ca', '/CN=unrelated test CA', 'ca'),
    ]);
    const [server, otherClient] = await Promise.all([
      issue('server', '/CN=localhost', 'server', ca.signer),
      issue('other-client', '/CN=intruder/O=elsewhere', 'client', otherCa.signer),
    ]);
    return {
      dir,
      ca: ca.cert,
      server: files(server),
      otherCa: otherCa.cert,
      otherClient: files(otherClient),
      clientCertificate: async (subject) => files(await issue(`client-${++issued}`, subject, 'client', ca.signer)),
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (error: unknown) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
