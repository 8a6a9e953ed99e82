/**
 * Telling the app that its file changed: a command run through the shell
 * (`--exec`), or a signal to the pid in a pid file (`--signal`, `--pid-file`).
 * A reload that does not succeed throws a `ReloadError` whose message says
 * why in one line.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { ReloadSpec } from './options.js';

/** What the reload is about; the command sees it as CFGD_USER_ID, CFGD_CONFIG_NAME, CFGD_VERSION, CFGD_FILE. */
export interface ReloadContext {
  readonly userId: string;
  readonly configName: string;
  readonly version: number;
  readonly file: string;
}

/** A reload that failed: the command exited non-zero or timed out, or the signal could not be sent. */
export class ReloadError extends Error {
  override readonly name = 'ReloadError';
}

/** The most of a failed command's stderr that its error carries. */
const STDERR_TAIL = 512;

/**
 * Runs the reload `spec` says for `context`, with `env` (the agent's
 * environment) under the command. Resolves once it succeeded.
 */
export async function reload(
  spec: ReloadSpec,
  context: ReloadContext,
  env: Readonly<Record<string, string | undefined>>,
): Promise<void> {
  switch (spec.kind) {
    case 'none':
      return;
    case 'exec':
      return runCommand(spec.command, commandEnv(env, context), spec.timeoutMs);
    case 'signal':
      return signalPidFile(spec.pidFile, spec.signal);
  }
}

/**
 * The command's environment: the agent's, without its credential (the app's
 * reload has no use for the agent's token), and the four CFGD_ variables.
 */
export function commandEnv(
  env: Readonly<Record<string, string | undefined>>,
  context: ReloadContext,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && key !== 'CFGD_TOKEN') out[key] = value;
  out.CFGD_USER_ID = context.userId;
  out.CFGD_CONFIG_NAME = context.configName;
  out.CFGD_VERSION = String(context.version);
  out.CFGD_FILE = context.file;
  return out;
}

/**
 * Runs `command` with `/bin/sh -c` and resolves when it exits 0. It runs in
 * a process group of its own: past `timeoutMs` the whole group is killed
 * (SIGKILL) and the reload failed. Its output is kept only for the error.
 */
export function runCommand(command: string, env: Record<string, string>, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { env, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL * 2);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new ReloadError(`the reload command could not start: ${error.message}`));
    });
    // 'exit' rather than 'close': a daemon the command started in the background may hold stderr open.
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      child.stderr.destroy();
      if (timedOut) return reject(new ReloadError(`the reload command timed out after ${timeoutMs} ms`));
      if (code === 0) return resolve();
      const why = code !== null ? `exited with status ${code}` : `was killed by ${signal ?? 'a signal'}`;
      const tail = lastLine(stderr);
      reject(new ReloadError(`the reload command ${why}${tail === '' ? '' : `: ${tail}`}`));
    });
  });
}

/** Sends `signal` to the pid written in `pidFile`. */
export async function signalPidFile(pidFile: string, signal: NodeJS.Signals): Promise<void> {
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch (error: unknown) {
    throw new ReloadError(`the pid file ${pidFile} cannot be read: ${codeOf(error)}`);
  }
  const pid = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(pid) || pid < 2) {
    throw new ReloadError(`the pid file ${pidFile} holds no pid`);
  }
  try {
    process.kill(pid, signal);
  } catch (error: unknown) {
    throw new ReloadError(`${signal} could not be sent to pid ${pid} (from ${pidFile}): ${codeOf(error)}`);
  }
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // The group has ended meanwhile.
  }
}

function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const last = lines.at(-1) ?? '';
  return last.length > STDERR_TAIL ? `${last.slice(0, STDERR_TAIL)}…` : last;
}

function codeOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code ?? (error instanceof Error ? error.message : String(error));
}
