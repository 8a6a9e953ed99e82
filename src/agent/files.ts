/**
 * The agent's file operations. A file is replaced atomically, so that an app
 * reading it at any moment reads the old bytes or the new ones, never a mix
 * or a truncated file, and a crash at any moment leaves one or the other.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The mode of a file the agent creates (its mode is kept when it replaces one). */
export const NEW_FILE_MODE = 0o644;

/**
 * Replaces `path` with `data` atomically: a temporary file in the same
 * directory (hence the same file system) is written and fsynced, renamed over
 * `path`, and the directory fsynced so that the rename itself is durable. The
 * file keeps the permission bits of the file it replaces, or gets
 * `NEW_FILE_MODE`. On failure `path` is untouched and the temporary file gone.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const directory = dirname(path);
  const mode = await existingMode(path);
  const temporary = join(directory, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx', mode);
    try {
      await handle.writeFile(data);
      // open() applied the umask; the mode is meant as given.
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (error: unknown) {
    await rm(temporary, { force: true });
    throw error;
  }
  await syncDirectory(directory);
}

/** The bytes of `path`, or null when there is no such file. */
export async function readFileIfExists(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch (error: unknown) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/** Removes `path` (nothing when it is gone already) and makes the removal durable. */
export async function removeFile(path: string): Promise<void> {
  await rm(path, { force: true });
  await syncDirectory(dirname(path));
}

/** The SHA-256 of `data`, hex. */
export function sha256(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

async function existingMode(path: string): Promise<number> {
  try {
    return (await stat(path)).mode & 0o7777;
  } catch (error: unknown) {
    if (isNotFound(error)) return NEW_FILE_MODE;
    throw error;
  }
}

async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
