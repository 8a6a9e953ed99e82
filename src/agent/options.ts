/**
 * The command line of `cfgd agent`, checked: one function from the strings
 * commander parsed to the options the agent runs with, or an
 * `AgentOptionsError` saying in one line what is wrong. Pure: paths are
 * resolved against the given working directory, nothing is read.
 */
import { basename, dirname, extname, join, resolve } from 'node:path';
import { constants } from 'node:os';
import { RENDER_FORMATS, type RenderFormat } from '../render/render.js';

/** The options as commander hands them over: every value a string, absent when not given. */
export interface RawAgentOptions {
  readonly user?: string | undefined;
  readonly config?: string | undefined;
  readonly file?: string | undefined;
  readonly dir?: string | undefined;
  readonly format?: string | undefined;
  readonly template?: string | undefined;
  readonly extension?: string | undefined;
  readonly exec?: string | undefined;
  readonly signal?: string | undefined;
  readonly pidFile?: string | undefined;
  readonly execTimeoutMs?: string | undefined;
  readonly instanceId?: string | undefined;
  readonly stateFile?: string | undefined;
  readonly healthAddr?: string | undefined;
  readonly reportIntervalMs?: string | undefined;
  readonly retryMs?: string | undefined;
}

/** How a config becomes a file: one of src/render's formats, or a Handlebars template. */
export type OutputSpec =
  { readonly kind: 'format'; readonly format: RenderFormat } | { readonly kind: 'template'; readonly path: string };

/** What tells the app that its file changed. */
export type ReloadSpec =
  | { readonly kind: 'none' }
  | { readonly kind: 'exec'; readonly command: string; readonly timeoutMs: number }
  | { readonly kind: 'signal'; readonly signal: NodeJS.Signals; readonly pidFile: string };

/** The agent's options, checked; every path absolute. */
export interface AgentOptions {
  readonly userId: string;
  /** The config to follow; undefined: every config of the user (a user watch). */
  readonly configName: string | undefined;
  /** `--file`: the one file of the config watch. */
  readonly file: string | undefined;
  /** `--dir`: the directory of `NAME.EXT` files. */
  readonly dir: string | undefined;
  readonly output: OutputSpec;
  /** The extension of `--dir` files, without its dot. */
  readonly extension: string;
  readonly reload: ReloadSpec;
  readonly instanceId: string;
  readonly stateFile: string;
  readonly health: { readonly host: string; readonly port: number };
  readonly reportIntervalMs: number;
  /**
   * The first wait before a version whose write or reload failed is tried
   * again; each attempt after it waits twice as long, up to MAX_RETRY_MS.
   * 0: a failed version is not tried again in this run.
   */
  readonly retryMs: number;
}

/** A mistake in the agent's command line; its message is one line naming the flag. */
export class AgentOptionsError extends Error {
  override readonly name = 'AgentOptionsError';
}

/** The health listener unless `--health-addr` says otherwise. */
export const DEFAULT_HEALTH_ADDR = '127.0.0.1:9090';
export const DEFAULT_EXEC_TIMEOUT_MS = 30_000;
export const DEFAULT_REPORT_INTERVAL_MS = 30_000;
export const DEFAULT_RETRY_MS = 10_000;
/** The longest wait between two attempts of a failed version. */
export const MAX_RETRY_MS = 300_000;

/** cfgd's names (users, configs, instances): 1–128 characters from A–Z a–z 0–9 . _ - */
const NAME = /^[A-Za-z0-9._-]{1,128}$/;
const EXTENSION = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;
const TEMPLATE_SUFFIX = '.hbs';

/**
 * The options of `raw`, checked and completed with their defaults: the
 * instance id defaults to `hostname`, relative paths are resolved against
 * `cwd`. Throws `AgentOptionsError` for the first mistake found.
 */
export function parseAgentOptions(raw: RawAgentOptions, defaults: { hostname: string; cwd: string }): AgentOptions {
  const userId = name('--user', raw.user);
  const configName = raw.config === undefined ? undefined : name('--config', raw.config);
  if ((raw.file === undefined) === (raw.dir === undefined)) {
    throw new AgentOptionsError('give either --file PATH (with --config) or --dir DIR');
  }
  if (raw.file !== undefined && configName === undefined) {
    throw new AgentOptionsError('--file needs --config NAME; to follow every config of the user, use --dir DIR');
  }
  const file = raw.file === undefined ? undefined : path('--file', raw.file, defaults.cwd);
  const dir = raw.dir === undefined ? undefined : path('--dir', raw.dir, defaults.cwd);

  if (raw.format !== undefined && raw.template !== undefined) {
    throw new AgentOptionsError('give --format or --template, not both');
  }
  let output: OutputSpec;
  if (raw.template !== undefined) {
    output = { kind: 'template', path: path('--template', raw.template, defaults.cwd) };
  } else {
    const format = raw.format ?? 'json';
    if (!(RENDER_FORMATS as readonly string[]).includes(format)) {
      throw new AgentOptionsError(`--format must be one of ${RENDER_FORMATS.join(', ')}, got ${quoted(format)}`);
    }
    output = { kind: 'format', format: format as RenderFormat };
  }

  if (raw.extension !== undefined && dir === undefined) {
    throw new AgentOptionsError('--extension names the files of --dir; with --file the path says it');
  }
  const extension = fileExtension(raw.extension, output, dir !== undefined);

  const reload = reloadSpec(raw, defaults.cwd);
  const instanceId = raw.instanceId ?? defaults.hostname;
  if (!NAME.test(instanceId)) {
    throw new AgentOptionsError(
      raw.instanceId === undefined
        ? `the host name ${quoted(instanceId)} cannot name this instance (1-128 of A-Z a-z 0-9 . _ -): give --instance-id`
        : `--instance-id must be 1-128 characters from A-Z a-z 0-9 . _ -, got ${quoted(instanceId)}`,
    );
  }

  const stateFile =
    raw.stateFile !== undefined
      ? path('--state-file', raw.stateFile, defaults.cwd)
      : configName === undefined
        ? join(dir!, '.cfgd-agent.json')
        : join(dirname(file ?? join(dir!, `${configName}.${extension}`)), `.cfgd-agent-${configName}.json`);

  return {
    userId,
    configName,
    file,
    dir,
    output,
    extension,
    reload,
    instanceId,
    stateFile,
    health: hostPort('--health-addr', raw.healthAddr ?? DEFAULT_HEALTH_ADDR),
    reportIntervalMs: positive('--report-interval-ms', raw.reportIntervalMs, DEFAULT_REPORT_INTERVAL_MS),
    retryMs: positive('--retry-ms', raw.retryMs, DEFAULT_RETRY_MS, 0),
  };
}

/** The file a config is written to: `--file`, or `DIR/NAME.EXT`. */
export function configFile(options: AgentOptions, configName: string): string {
  return options.file ?? join(options.dir!, `${configName}.${options.extension}`);
}

/**
 * `--extension`, or the format's name, or for a template the extension its
 * name has before `.hbs` (`nginx.conf.hbs` → `conf`); with `--dir`, a
 * template whose name has none needs `--extension`.
 */
function fileExtension(given: string | undefined, output: OutputSpec, needed: boolean): string {
  if (given !== undefined) {
    const extension = given.startsWith('.') ? given.slice(1) : given;
    if (!EXTENSION.test(extension)) {
      throw new AgentOptionsError(`--extension must be letters, digits, . _ - (no /), got ${quoted(given)}`);
    }
    return extension;
  }
  if (output.kind === 'format') return output.format;
  const name = basename(output.path);
  const inner = extname(name.endsWith(TEMPLATE_SUFFIX) ? name.slice(0, -TEMPLATE_SUFFIX.length) : '').slice(1);
  if (EXTENSION.test(inner)) return inner;
  if (needed) {
    throw new AgentOptionsError(
      `--extension is needed: the template's name ${quoted(name)} has no extension before .hbs`,
    );
  }
  return '';
}

function reloadSpec(raw: RawAgentOptions, cwd: string): ReloadSpec {
  if (raw.exec !== undefined && (raw.signal !== undefined || raw.pidFile !== undefined)) {
    throw new AgentOptionsError('give --exec or --signal with --pid-file, not both');
  }
  if (raw.exec !== undefined) {
    if (raw.exec.trim() === '') throw new AgentOptionsError('--exec needs a command');
    return {
      kind: 'exec',
      command: raw.exec,
      timeoutMs: positive('--exec-timeout-ms', raw.execTimeoutMs, DEFAULT_EXEC_TIMEOUT_MS),
    };
  }
  if (raw.execTimeoutMs !== undefined) throw new AgentOptionsError('--exec-timeout-ms is for --exec');
  if ((raw.signal === undefined) !== (raw.pidFile === undefined)) {
    throw new AgentOptionsError('--signal and --pid-file go together: the signal is sent to the pid in the file');
  }
  if (raw.signal === undefined || raw.pidFile === undefined) return { kind: 'none' };
  return { kind: 'signal', signal: signalName(raw.signal), pidFile: path('--pid-file', raw.pidFile, cwd) };
}

/** `HUP`, `SIGHUP` or `hup` as `SIGHUP`; a name the system does not know is a mistake. */
export function signalName(given: string): NodeJS.Signals {
  const upper = given.toUpperCase();
  const full = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  if (!Object.hasOwn(constants.signals, full)) {
    throw new AgentOptionsError(`--signal must name a signal (HUP, USR1, SIGTERM …), got ${quoted(given)}`);
  }
  return full as NodeJS.Signals;
}

function name(flag: string, value: string | undefined): string {
  if (value === undefined) throw new AgentOptionsError(`${flag} is required`);
  if (!NAME.test(value)) {
    throw new AgentOptionsError(`${flag} must be 1-128 characters from A-Z a-z 0-9 . _ -, got ${quoted(value)}`);
  }
  return value;
}

function path(flag: string, value: string, cwd: string): string {
  if (value === '') throw new AgentOptionsError(`${flag} needs a path`);
  return resolve(cwd, value);
}

function positive(flag: string, value: string | undefined, fallback: number, least = 1): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < least || !Number.isSafeInteger(Number(value))) {
    const range = least === 0 ? '(0 or more)' : `above ${least - 1}`;
    throw new AgentOptionsError(`${flag} must be a whole number of milliseconds ${range}, got ${quoted(value)}`);
  }
  return Number(value);
}

/** `host:port` or `[v6]:port`; port 0 asks the system for a free one. */
export function hostPort(flag: string, value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2] ?? '';
  if (match === null || host === '' || port > 65_535) {
    throw new AgentOptionsError(`${flag} must be HOST:PORT (port 0 picks a free one), got ${quoted(value)}`);
  }
  return { host, port };
}

/** A value quoted for a message, cut short. */
function quoted(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
}
