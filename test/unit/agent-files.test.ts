/**
 * The agent's atomic file replacement, its reload command and signal, and
 * the one-line error its fleet reports carry.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NEW_FILE_MODE, readFileIfExists, removeFile, writeFileAtomic } from '../../src/agent/files.js';
import { commandEnv, reload, ReloadError, runCommand, signalPidFile } from '../../src/agent/reloader.js';
import { REPORT_ERROR_MAX, reportError } from '../../src/agent/reporter.js';
import { isGone, waitFor } from '../helpers/client-library.js';

const dir = mkdtempSync(join(tmpdir(), 'cfgd-agent-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const fresh = (): string => join(dir, `f${++counter}`);

describe('writeFileAtomic', () => {
  it('creates a file with mode 0644 whatever the umask, and leaves no temporary file', async () => {
    const path = fresh();
    const umask = process.umask(0o077);
    try {
      await writeFileAtomic(path, 'one\n');
    } finally {
      process.umask(umask);
    }
    expect(readFileSync(path, 'utf8')).toBe('one\n');
    expect(statSync(path).mode & 0o7777).toBe(NEW_FILE_MODE);
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('keeps the mode of the file it replaces, and replaces its inode (readers see old or new)', async () => {
    const path = fresh();
    writeFileSync(path, 'old');
    chmodSync(path, 0o640);
    const before = statSync(path).ino;
    await writeFileAtomic(path, Buffer.from('new'));
    expect(readFileSync(path, 'utf8')).toBe('new');
    expect(statSync(path).mode & 0o7777).toBe(0o640);
    expect(statSync(path).ino).not.toBe(before);
  });

  it('fails without a trace when the directory does not exist', async () => {
    const path = join(dir, 'missing', 'file');
    await expect(writeFileAtomic(path, 'x')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFileIfExists(path)).toBeNull();
  });

  it('fails when the target is a directory, leaving it and no temporary file', async () => {
    const path = mkdtempSync(join(dir, 'target-'));
    await expect(writeFileAtomic(path, 'x')).rejects.toBeInstanceOf(Error);
    expect(statSync(path).isDirectory()).toBe(true);
    expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('removeFile removes, and is a no-op on a missing file', async () => {
    const path = fresh();
    writeFileSync(path, 'x');
    await removeFile(path);
    expect(await readFileIfExists(path)).toBeNull();
    await removeFile(path);
  });
});

describe('reload', () => {
  const context = { userId: 'alice', configName: 'web', version: 12, file: '/etc/app/web.json' };

  it('runs the command through /bin/sh with the CFGD_ variables, without the agent token', async () => {
    const out = fresh();
    await reload(
      {
        kind: 'exec',
        command: `echo "$CFGD_USER_ID $CFGD_CONFIG_NAME $CFGD_VERSION $CFGD_FILE [$CFGD_TOKEN] $KEEP" > ${out}`,
        timeoutMs: 5000,
      },
      context,
      { PATH: process.env.PATH, CFGD_TOKEN: 'secret', KEEP: 'kept' },
    );
    expect(readFileSync(out, 'utf8')).toBe('alice web 12 /etc/app/web.json [] kept\n');
    expect(commandEnv({ CFGD_TOKEN: 'x' }, context)).not.toHaveProperty('CFGD_TOKEN');
  });

  it('a non-zero exit fails with the status and the last line of stderr', async () => {
    await expect(runCommand('echo first >&2; echo "config rejected" >&2; exit 3', {}, 5000)).rejects.toThrow(
      new ReloadError('the reload command exited with status 3: config rejected'),
    );
    await expect(runCommand('kill -9 $$', {}, 5000)).rejects.toThrow('the reload command was killed by SIGKILL');
  });

  it('past its timeout the command and what it started are killed, and the reload failed', async () => {
    const pidFile = fresh();
    await expect(runCommand(`sleep 30 & echo $! > ${pidFile}; wait`, {}, 300)).rejects.toThrow(
      'the reload command timed out after 300 ms',
    );
    // The background child was in the killed group too.
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(`the background sleep ${pid} to end`, () => isGone(pid), 5000);
  });

  it('a signal goes to the pid in the pid file; a missing file, garbage or a gone pid fail', async () => {
    const child = spawn('sh', ['-c', 'trap "exit 0" USR1; while :; do sleep 0.05; done'], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const pidFile = fresh();
    writeFileSync(pidFile, `${child.pid}\n`);
    // Give sh a moment to install its trap before the signal comes.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await signalPidFile(pidFile, 'SIGUSR1');
    expect(await exited).toBe(0);

    await expect(signalPidFile(join(dir, 'none.pid'), 'SIGHUP')).rejects.toThrow(/cannot be read: ENOENT$/);
    writeFileSync(pidFile, 'abc\n');
    await expect(signalPidFile(pidFile, 'SIGHUP')).rejects.toThrow(/holds no pid$/);
    writeFileSync(pidFile, '999999999');
    await expect(signalPidFile(pidFile, 'SIGHUP')).rejects.toThrow(
      `SIGHUP could not be sent to pid 999999999 (from ${pidFile}): ESRCH`,
    );
  });
});

describe('reportError', () => {
  it('one line, at most 1024 characters, never half a surrogate pair', () => {
    expect(reportError('the reload command\nexited  with\tstatus 3\n')).toBe('the reload command exited with status 3');
    const long = reportError('x'.repeat(5000));
    expect(long).toHaveLength(REPORT_ERROR_MAX);
    expect(long.endsWith('…')).toBe(true);
    const astral = reportError(`${'x'.repeat(REPORT_ERROR_MAX - 2)}😀😀`);
    expect(astral.length).toBeLessThanOrEqual(REPORT_ERROR_MAX);
    expect(astral).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
  });
});
