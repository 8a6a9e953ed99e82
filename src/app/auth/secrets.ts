import { createHash, randomBytes } from 'node:crypto';

/** Prefix of the tokens cfgd issues: tells a reader (and a secret scanner) what the string is. */
export const TOKEN_PREFIX = 'cfgd_';

/** A new token secret: 256 random bits, base64url, behind `TOKEN_PREFIX`. */
export function newTokenSecret(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** A new public token id: 64 random bits in hex. */
export function newTokenId(): string {
  return randomBytes(8).toString('hex');
}

/**
 * What the store keeps of a secret: its SHA-256 in hex. A fast hash is right
 * here: the secrets carry 256 random bits (or are operator-chosen strings of
 * 32 characters or more), so there is nothing to guess that a slow hash would
 * protect.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}
