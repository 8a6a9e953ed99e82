import type { Grant } from './grants.js';

/**
 * A bearer token issued by cfgd, as stored: never the secret, only its
 * SHA-256 (the secrets are 256-bit random, or operator-chosen strings of 32
 * characters or more, so a fast hash is enough to make a stolen table useless
 * for presenting them).
 */
export interface TokenRecord {
  /** Public identifier (safe to log and list); `admin` for the bootstrap token. */
  readonly id: string;
  /** A label chosen by its creator; the principal is `token:{name}`. */
  readonly name: string;
  /** Lower-case hex SHA-256 of the whole secret; unique among tokens. */
  readonly secretHash: string;
  readonly grants: readonly Grant[];
  readonly createdAt: Date;
  /** The principal that created it (`cfgd` for the bootstrap token). */
  readonly createdBy: string;
  readonly expiresAt?: Date | undefined;
  readonly revokedAt?: Date | undefined;
  readonly revokedBy?: string | undefined;
}

/**
 * The grants of a principal that does not carry them itself: a client
 * certificate's subject (`cert:{subject}`) or a JWT's subject (`jwt:{sub}`).
 */
export interface BindingRecord {
  readonly principal: string;
  readonly grants: readonly Grant[];
  readonly updatedAt: Date;
  readonly updatedBy: string;
}
