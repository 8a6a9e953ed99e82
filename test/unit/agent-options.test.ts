/**
 * The agent's command line: what each combination of flags means (files,
 * state file, extension, reload), and the one-line mistake for each wrong one.
 */
import { describe, expect, it } from 'vitest';
import {
  AgentOptionsError,
  configFile,
  hostPort,
  parseAgentOptions,
  signalName,
  type RawAgentOptions,
} from '../../src/agent/options.js';

const defaults = { hostname: 'web-7', cwd: '/srv/app' };
const parse = (raw: RawAgentOptions) => parseAgentOptions(raw, defaults);

function mistake(raw: RawAgentOptions): string {
  try {
    parse(raw);
  } catch (error: unknown) {
    expect(error).toBeInstanceOf(AgentOptionsError);
    return (error as Error).message;
  }
  throw new Error('expected an AgentOptionsError');
}

describe('parseAgentOptions', () => {
  it('one config into one file: JSON by default, no reload, the state beside the file, defaults for the rest', () => {
    const options = parse({ user: 'alice', config: 'web', file: 'conf/web.json' });
    expect(options).toEqual({
      userId: 'alice',
      configName: 'web',
      file: '/srv/app/conf/web.json',
      dir: undefined,
      output: { kind: 'format', format: 'json' },
      extension: 'json',
      reload: { kind: 'none' },
      instanceId: 'web-7',
      stateFile: '/srv/app/conf/.cfgd-agent-web.json',
      health: { host: '127.0.0.1', port: 9090 },
      reportIntervalMs: 30_000,
      retryMs: 10_000,
    });
    expect(configFile(options, 'web')).toBe('/srv/app/conf/web.json');
  });

  it('every config of a user into a directory: NAME.EXT files, one state file', () => {
    const options = parse({ user: 'alice', dir: '/etc/app', format: 'yaml', extension: '.yml' });
    expect(options.configName).toBeUndefined();
    expect(options.extension).toBe('yml');
    expect(options.stateFile).toBe('/etc/app/.cfgd-agent.json');
    expect(configFile(options, 'db')).toBe('/etc/app/db.yml');
  });

  it('a template: its extension comes from its name before .hbs, unless --extension says', () => {
    const options = parse({ user: 'u', config: 'c', dir: 'd', template: 'tpl/nginx.conf.hbs' });
    expect(options.output).toEqual({ kind: 'template', path: '/srv/app/tpl/nginx.conf.hbs' });
    expect(configFile(options, 'c')).toBe('/srv/app/d/c.conf');
    expect(options.stateFile).toBe('/srv/app/d/.cfgd-agent-c.json');
    expect(parse({ user: 'u', dir: 'd', template: 'x.hbs', extension: 'ini' }).extension).toBe('ini');
    expect(mistake({ user: 'u', dir: 'd', template: 'x.hbs' })).toBe(
      '--extension is needed: the template\'s name "x.hbs" has no extension before .hbs',
    );
    // With --file the path names the file: no extension needed.
    expect(parse({ user: 'u', config: 'c', file: 'out', template: 'x.hbs' }).file).toBe('/srv/app/out');
  });

  it('reloads: a command with its timeout, or a signal to the pid in a file', () => {
    expect(parse({ user: 'u', config: 'c', file: 'f', exec: 'nginx -s reload', execTimeoutMs: '5000' }).reload).toEqual(
      { kind: 'exec', command: 'nginx -s reload', timeoutMs: 5000 },
    );
    expect(parse({ user: 'u', config: 'c', file: 'f', exec: 'true' }).reload).toEqual({
      kind: 'exec',
      command: 'true',
      timeoutMs: 30_000,
    });
    expect(parse({ user: 'u', config: 'c', file: 'f', signal: 'hup', pidFile: 'run/app.pid' }).reload).toEqual({
      kind: 'signal',
      signal: 'SIGHUP',
      pidFile: '/srv/app/run/app.pid',
    });
  });

  it('the rest: instance id, state file, health address (port 0, IPv6), heartbeat', () => {
    const options = parse({
      user: 'u',
      config: 'c',
      file: 'f',
      instanceId: 'pod-1',
      stateFile: '/var/lib/agent.json',
      healthAddr: '[::1]:0',
      reportIntervalMs: '1000',
      retryMs: '250',
    });
    expect(options).toMatchObject({
      instanceId: 'pod-1',
      stateFile: '/var/lib/agent.json',
      health: { host: '::1', port: 0 },
      reportIntervalMs: 1000,
      retryMs: 250,
    });
    // 0: a failed version waits for the next one (or a restart).
    expect(parse({ user: 'u', dir: 'd', retryMs: '0' }).retryMs).toBe(0);
  });

  it.each<[string, RawAgentOptions, string]>([
    ['no user', { dir: 'd' }, '--user is required'],
    ['a bad user', { user: 'a/b', dir: 'd' }, '--user must be 1-128 characters from A-Z a-z 0-9 . _ -, got "a/b"'],
    ['a bad config', { user: 'u', config: 'a b', dir: 'd' }, '--config must be 1-128 characters'],
    ['neither --file nor --dir', { user: 'u', config: 'c' }, 'give either --file PATH (with --config) or --dir DIR'],
    ['both --file and --dir', { user: 'u', config: 'c', file: 'f', dir: 'd' }, 'give either --file'],
    ['--file without --config', { user: 'u', file: 'f' }, '--file needs --config NAME'],
    [
      'an unknown format',
      { user: 'u', dir: 'd', format: 'toml' },
      '--format must be one of json, yaml, env, properties',
    ],
    ['a format and a template', { user: 'u', dir: 'd', format: 'json', template: 't.hbs' }, 'not both'],
    ['--extension with --file', { user: 'u', config: 'c', file: 'f', extension: 'x' }, '--extension names the files'],
    ['a bad extension', { user: 'u', dir: 'd', extension: 'a/b' }, '--extension must be'],
    ['--exec and --signal', { user: 'u', dir: 'd', exec: 'x', signal: 'HUP', pidFile: 'p' }, 'not both'],
    ['an empty --exec', { user: 'u', dir: 'd', exec: ' ' }, '--exec needs a command'],
    ['--signal without --pid-file', { user: 'u', dir: 'd', signal: 'HUP' }, 'go together'],
    ['--pid-file without --signal', { user: 'u', dir: 'd', pidFile: 'p' }, 'go together'],
    ['an unknown signal', { user: 'u', dir: 'd', signal: 'NOPE', pidFile: 'p' }, '--signal must name a signal'],
    ['--exec-timeout-ms without --exec', { user: 'u', dir: 'd', execTimeoutMs: '5' }, 'is for --exec'],
    ['a zero timeout', { user: 'u', dir: 'd', exec: 'x', execTimeoutMs: '0' }, '--exec-timeout-ms must be'],
    ['a fractional interval', { user: 'u', dir: 'd', reportIntervalMs: '1.5' }, '--report-interval-ms must be'],
    [
      'a negative retry wait',
      { user: 'u', dir: 'd', retryMs: '-1' },
      '--retry-ms must be a whole number of milliseconds (0 or more)',
    ],
    ['a retry wait that is no number', { user: 'u', dir: 'd', retryMs: '1e3' }, '--retry-ms must be'],
    ['a bad instance id', { user: 'u', dir: 'd', instanceId: 'a b' }, '--instance-id must be'],
    ['a health address without a port', { user: 'u', dir: 'd', healthAddr: 'localhost' }, '--health-addr must be'],
    ['a health port too high', { user: 'u', dir: 'd', healthAddr: '127.0.0.1:70000' }, '--health-addr must be'],
  ])('%s is a one-line mistake', (_, raw, message) => {
    const text = mistake(raw);
    expect(text).toContain(message);
    expect(text).not.toContain('\n');
  });

  it('a host name that cannot name an instance asks for --instance-id', () => {
    expect(() => parseAgentOptions({ user: 'u', dir: 'd' }, { hostname: 'my host', cwd: '/' })).toThrow(
      'give --instance-id',
    );
  });
});

describe('signalName and hostPort', () => {
  it('signals by short or full name, any case', () => {
    expect(signalName('HUP')).toBe('SIGHUP');
    expect(signalName('sigusr1')).toBe('SIGUSR1');
    expect(() => signalName('SIGNOPE')).toThrow(AgentOptionsError);
  });

  it('host:port and [v6]:port', () => {
    expect(hostPort('--x', '0.0.0.0:9090')).toEqual({ host: '0.0.0.0', port: 9090 });
    expect(hostPort('--x', '[::]:80')).toEqual({ host: '::', port: 80 });
    expect(() => hostPort('--x', ':80')).toThrow(AgentOptionsError);
    expect(() => hostPort('--x', '::1:80')).toThrow(AgentOptionsError);
  });
});
