import { chmod, open, unlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import { CfgdError, type TokenRecord } from '../../domain/index.js';
import type { CredentialStore } from '../../store/credential-store.js';
import { ADMIN_GRANTS } from './auth-app.js';
import { hashSecret, newTokenSecret } from './secrets.js';

/** The id (and name) of the bootstrap admin token. */
export const ADMIN_TOKEN_ID = 'admin';

export interface AdminTokenOptions {
  readonly credentials: CredentialStore;
  /** The operator's own admin token (`--admin-token`), installed as the `admin` token. */
  readonly adminToken?: string | undefined;
  /** Where to write a generated admin token (beside the embedded store); undefined: no local directory. */
  readonly tokenFile?: string | undefined;
  readonly clock: () => Date;
  readonly log: Logger;
}

/**
 * Makes sure someone can administer cfgd once authentication is on, without
 * ever logging a secret:
 * - an operator-supplied token is installed as the `admin` token (replacing
 *   an earlier one: this is also how a lost admin token is replaced);
 * - otherwise, when the store has no `admin` token, one is generated, written
 *   to `tokenFile` with mode 0600, and the file's path is logged;
 * - with neither a supplied token nor a local directory (RethinkDB) and no
 *   `admin` token in the store, cfgd cannot be administered: start fails.
 */
export async function ensureAdminToken(options: AdminTokenOptions): Promise<void> {
  const { credentials, log } = options;
  const existing = await credentials.token(ADMIN_TOKEN_ID);
  if (options.adminToken !== undefined) {
    const secretHash = hashSecret(options.adminToken);
    if (existing?.secretHash === secretHash && existing.revokedAt === undefined) return;
    await credentials.putToken(adminToken(secretHash, options.clock()));
    log.info({ tokenId: ADMIN_TOKEN_ID }, 'installed the admin token given by --admin-token (CFGD_ADMIN_TOKEN)');
    return;
  }
  if (existing !== undefined) {
    if (existing.revokedAt !== undefined) {
      log.warn(
        { tokenId: ADMIN_TOKEN_ID },
        'the admin token is revoked; use another admin token, or restart with --admin-token to install a new one',
      );
    }
    return;
  }
  if (options.tokenFile === undefined) {
    throw new Error(
      'authentication is on and the store has no admin token; start one node with --admin-token (CFGD_ADMIN_TOKEN), ' +
        'a secret of at least 32 characters, to install it',
    );
  }
  const secret = newTokenSecret();
  await writeSecretFile(options.tokenFile, secret);
  try {
    await credentials.createToken(adminToken(hashSecret(secret), options.clock()));
  } catch (error: unknown) {
    await unlink(options.tokenFile).catch(() => {});
    // Another process created it first: its file is the one to use.
    if (error instanceof CfgdError && error.reason === 'TOKEN_EXISTS') return;
    throw error;
  }
  log.info(
    { tokenFile: options.tokenFile },
    'created the admin token; it is in this file (mode 0600): send it as "authorization: Bearer <token>"',
  );
}

function adminToken(secretHash: string, now: Date): TokenRecord {
  return {
    id: ADMIN_TOKEN_ID,
    name: ADMIN_TOKEN_ID,
    secretHash,
    grants: ADMIN_GRANTS,
    createdAt: now,
    createdBy: 'cfgd',
  };
}

/** Writes `secret` to a new file only its owner can read; a stale file of a lost token is replaced. */
async function writeSecretFile(path: string, secret: string): Promise<void> {
  await unlink(path).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  });
  const file = await open(path, 'wx', 0o600);
  try {
    await file.writeFile(`${secret}\n`);
    await file.sync();
  } finally {
    await file.close();
  }
  // The umask cannot widen 0600, but make sure of the mode whatever created the directory.
  await chmod(path, 0o600);
}
