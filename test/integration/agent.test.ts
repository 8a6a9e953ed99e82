/**
 * `cfgd agent` end to end: a real cfgd process (embedded store, killed and
 * started again on its port and data directory) and real agent processes,
 * writing through the client library. Files on disk, reload commands and
 * signals, last-known-good files across restarts of either side, fleet
 * reports, formats read back by readers that are not cfgd's, and a user
 * watch's one file per config.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parse as parseDotenv } from 'dotenv';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CfgdClient } from '../../src/client/index.js';
import { Agents, runAgent, type AgentProcess, type HealthBody } from '../helpers/agent.js';
import { TEST_ADMIN_TOKEN } from '../helpers/auth.js';
import { FAST_BACKOFF, Nodes, sleep, type Node } from '../helpers/client-library.js';
import { freePort } from '../helpers/net.js';
import { dotenvExact, envExpected, propertiesExpected, propertiesRead, shRead } from '../helpers/render-readers.js';

vi.setConfig({ testTimeout: 60_000 });

const nodes = new Nodes();
const agents = new Agents();
const scratch = mkdtempSync(join(tmpdir(), 'cfgd-agent-'));
let serverArgs: string[];
let server: Node | undefined;
let address: string;
let client: CfgdClient;

beforeAll(async () => {
  const port = await freePort();
  address = `127.0.0.1:${port}`;
  // One process, on a port and data directory it keeps across the restarts below.
  serverArgs = ['--store', join(scratch, 'data'), '--workers', '1', '--grpc-addr', address];
  server = await nodes.start(serverArgs);
  client = new CfgdClient({ addresses: [address], backoff: FAST_BACKOFF, deadlineMs: 5000 });
});

afterAll(async () => {
  await agents.cleanup();
  client.close();
  await nodes.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

let dirs = 0;
/** A directory of its own under the file's scratch directory. */
function freshDir(): string {
  const dir = join(scratch, `t${++dirs}`);
  mkdirSync(dir);
  return dir;
}

/** The server, started again on its port and store when a test left it stopped. */
async function ensureServer(): Promise<void> {
  server ??= await nodes.start(serverArgs);
}

/** Agent arguments that every test passes: the server, and fast heartbeats. */
const common = (): string[] => ['--addr', address, '--report-interval-ms', '1000'];

/** The lines of a reload command's log (empty before it first ran). */
function lines(path: string): string[] {
  return existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
    : [];
}

/** Polls `ready` every few milliseconds; fails naming `what` after `timeoutMs`. */
async function until(what: string, ready: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}

/** Waits until the agent's `/healthz` body satisfies `ready`; answers the last status and body. */
async function health(
  agent: AgentProcess,
  what: string,
  ready: (body: HealthBody, status: number) => boolean,
): Promise<{ status: number; body: HealthBody }> {
  let last: { status: number; body: HealthBody } | undefined;
  await until(`/healthz: ${what}`, async () => {
    last = await agent.healthz();
    return ready(last.body, last.status);
  });
  return last!;
}

/** A reload command that appends `$CFGD_VERSION` (and what else `fields` name) to `log`. */
function appendCommand(log: string, fields = '"$CFGD_VERSION"'): string {
  return `printf '%s\\n' ${fields} >> '${log}'`;
}

describe('cfgd agent, one config', () => {
  it('a Put reaches the file and the --exec command (with its CFGD_ variables) within a second', async () => {
    const dir = freshDir();
    const file = join(dir, 'app.json');
    const log = join(dir, 'exec.log');
    const agent = await agents.start([
      ...common(),
      '--user',
      'latency',
      '--config',
      'app',
      '--file',
      file,
      '--exec',
      appendCommand(log, '"$CFGD_VERSION $CFGD_USER_ID $CFGD_CONFIG_NAME $CFGD_FILE"'),
    ]);
    // Nothing to write yet: not ready.
    expect((await health(agent, 'connected', (b) => b.connected)).status).toBe(503);

    const latencies: number[] = [];
    for (let n = 1; n <= 5; n++) {
      const values = { n, name: 'web', nested: { on: n % 2 === 0 } };
      await client.put({ userId: 'latency', configName: 'app', values });
      const answered = performance.now();
      await until(`the reload of version ${n}`, () => lines(log).length >= n, 10_000);
      latencies.push(performance.now() - answered);
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(values);
    }
    console.log(`Put answered → reload command ran: ${latencies.map((ms) => `${ms.toFixed(1)} ms`).join(', ')}`);
    expect(Math.max(...latencies)).toBeLessThan(1000);
    expect(lines(log)).toEqual([1, 2, 3, 4, 5].map((n) => `${n} latency app ${file}`));
    expect(statSync(file).mode & 0o777).toBe(0o644);
    const { status, body } = await agent.healthz();
    expect(status).toBe(200);
    expect(body.configs).toEqual({ app: { version: 5, file, failedVersion: 0, error: '' } });

    // A version whose file is the same (a schema set, the values unchanged): no write, no reload.
    await client.setSchema({ userId: 'latency', configName: 'app', schema: {} });
    await client.put({ userId: 'latency', configName: 'app', values: { n: 7 } });
    await until('the reload of version 7', () => lines(log).length >= 6);
    expect(lines(log).map((line) => line.split(' ')[0])).toEqual(['1', '2', '3', '4', '5', '7']);
    expect((await agent.healthz()).body.configs.app?.version).toBe(7);
    expect((await agents.stop(agent)).code).toBe(0);
  });

  it('cfgd killed (SIGKILL) and started again: the file stays meanwhile, and each version is reloaded once, in order', async () => {
    await ensureServer();
    const dir = freshDir();
    const file = join(dir, 'app.yaml');
    const log = join(dir, 'exec.log');
    const key = { userId: 'restart', configName: 'app' };
    const agent = await agents.start([
      ...common(),
      '--user',
      key.userId,
      '--config',
      key.configName,
      '--file',
      file,
      '--format',
      'yaml',
      '--exec',
      appendCommand(log),
    ]);
    // Watching before the writes: a watch that starts afresh begins with the current version only.
    await health(agent, 'connected', (b) => b.connected);
    await client.put({ ...key, values: { v: 1 } });
    await client.put({ ...key, values: { v: 2 } });
    await until('two reloads', () => lines(log).length >= 2);

    await nodes.stop(server!, 'SIGKILL');
    server = undefined;
    const down = await health(agent, 'disconnected', (b) => !b.connected);
    // Disconnected, and still serving its good file.
    expect(down.status).toBe(200);
    expect(down.body.configs.app).toMatchObject({ version: 2, failedVersion: 0 });
    expect(parseYaml(readFileSync(file, 'utf8'))).toEqual({ v: 2 });
    expect(agent.logs.some((l) => l.level === 'warn' && String(l.msg).includes('unreachable'))).toBe(true);

    await ensureServer();
    await health(agent, 'connected again', (b) => b.connected);
    for (let v = 3; v <= 5; v++) await client.put({ ...key, values: { v } });
    // Versions are applied in order, so a repeated or skipped one would show before the last.
    await until('the reload of version 5', () => lines(log).length >= 5);
    expect(lines(log)).toEqual(['1', '2', '3', '4', '5']);
    expect(parseYaml(readFileSync(file, 'utf8'))).toEqual({ v: 5 });
    expect(await agents.stop(agent)).toEqual({ code: 0, signal: null });
  });

  it('started while cfgd is down: serves the last-known-good file (200, connected false), then catches up once cfgd is back', async () => {
    await ensureServer();
    const dir = freshDir();
    const file = join(dir, 'app.json');
    const log = join(dir, 'exec.log');
    const key = { userId: 'offline', configName: 'app' };
    const args = [
      ...common(),
      '--user',
      key.userId,
      '--config',
      key.configName,
      '--file',
      file,
      '--exec',
      appendCommand(log),
    ];
    const first = await agents.start(args);
    await client.put({ ...key, values: { v: 1 } });
    await until('the first reload', () => lines(log).length >= 1);
    expect(await agents.stop(first)).toEqual({ code: 0, signal: null });
    const state = JSON.parse(readFileSync(join(dir, '.cfgd-agent-app.json'), 'utf8'));
    expect(state.configs.app).toMatchObject({ version: 1, file });

    // Written while no agent runs; then cfgd stops too.
    await client.put({ ...key, values: { v: 2 } });
    await client.put({ ...key, values: { v: 3 } });
    await nodes.stop(server!, 'SIGTERM');
    server = undefined;

    // Beside it, an agent with no state: nothing to serve, so not ready.
    const blankFile = join(freshDir(), 'app.json');
    const [second, blank] = await Promise.all([
      agents.start(args),
      agents.start([...common(), '--user', key.userId, '--config', key.configName, '--file', blankFile]),
    ]);
    const empty = await blank.healthz();
    expect(empty.status).toBe(503);
    expect(empty.body).toEqual({
      connected: false,
      instanceId: expect.any(String),
      configs: { app: { version: 0, file: blankFile, failedVersion: 0, error: '' } },
    });
    const offline = await second.healthz();
    expect(offline.status).toBe(200);
    expect(offline.body).toEqual({
      connected: false,
      instanceId: expect.any(String),
      configs: { app: { version: 1, file, failedVersion: 0, error: '' } },
    });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ v: 1 });

    await ensureServer();
    await until('the reload of version 3', () => lines(log).length >= 3);
    // Version 1 was not reloaded again on start: the file already held it.
    expect(lines(log)).toEqual(['1', '2', '3']);
    // The blank agent renders the current version once cfgd is back.
    await health(blank, 'version 3', (b, status) => status === 200 && b.configs.app?.version === 3);
    expect(JSON.parse(readFileSync(blankFile, 'utf8'))).toEqual({ v: 3 });
    await agents.stop(blank);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ v: 3 });
    const caughtUp = await health(second, 'version 3, connected', (b) => b.connected && b.configs.app?.version === 3);
    expect(caughtUp.status).toBe(200);
    // Its reports reach cfgd too, now that it is back.
    await until('the report of version 3', async () => {
      const fleet = await client.listInstances(key);
      return fleet.instances.some((i) => i.appliedVersion === 3 && i.failedVersion === 0);
    });
    await agents.stop(second);
  });

  it('a failing reload keeps the previous file, shows in /healthz and in ListInstances, and the next version recovers', async () => {
    await ensureServer();
    const dir = freshDir();
    const file = join(dir, 'app.json');
    const log = join(dir, 'exec.log');
    const key = { userId: 'failing', configName: 'app' };
    const agent = await agents.start([
      ...common(),
      '--user',
      key.userId,
      '--config',
      key.configName,
      '--file',
      file,
      '--instance-id',
      'web-1',
      '--exec',
      `if grep -q BROKEN "$CFGD_FILE"; then echo "refusing version $CFGD_VERSION" >&2; exit 3; fi; ${appendCommand(log)}`,
    ]);
    await client.put({ ...key, values: { mode: 'fine', n: 1 } });
    await until('the first reload', () => lines(log).length >= 1);
    const good = readFileSync(file);

    await client.put({ ...key, values: { mode: 'BROKEN', n: 2 } });
    const failed = await health(agent, 'version 2 failed', (b) => b.configs.app?.failedVersion === 2);
    expect(failed.status).toBe(200);
    expect(failed.body.configs.app).toEqual({
      version: 1,
      file,
      failedVersion: 2,
      error: 'the reload command exited with status 3: refusing version 2',
    });
    expect(readFileSync(file).equals(good)).toBe(true);
    expect(lines(log)).toEqual(['1']);
    let fleet = await client.listInstances(key);
    await until('the report of the failure', async () => {
      fleet = await client.listInstances(key);
      return fleet.instances[0]?.failedVersion === 2;
    });
    expect(fleet.latestVersion).toBe(2);
    expect(fleet.converged).toBe(0);
    expect(fleet.instances).toEqual([
      expect.objectContaining({
        instanceId: 'web-1',
        appliedVersion: 1,
        failedVersion: 2,
        error: 'the reload command exited with status 3: refusing version 2',
      }),
    ]);

    await client.put({ ...key, values: { mode: 'fine', n: 3 } });
    await until('the reload of version 3', () => lines(log).length >= 2);
    expect(lines(log)).toEqual(['1', '3']);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ mode: 'fine', n: 3 });
    const recovered = await health(agent, 'version 3', (b) => b.configs.app?.version === 3);
    expect(recovered.body.configs.app).toMatchObject({ failedVersion: 0, error: '' });
    await until('the report of version 3', async () => {
      fleet = await client.listInstances(key);
      return fleet.instances[0]?.appliedVersion === 3;
    });
    expect(fleet.converged).toBe(1);
    expect(fleet.instances[0]).toMatchObject({ appliedVersion: 3, failedVersion: 0, error: '' });
    await agents.stop(agent);
  });

  it('a reload that failed is tried again at doubling intervals until it succeeds; a later version replaces it', async () => {
    await ensureServer();
    const dir = freshDir();
    const file = join(dir, 'app.json');
    const log = join(dir, 'exec.log');
    const notReady = join(dir, 'not-ready');
    writeFileSync(notReady, '');
    const key = { userId: 'retrying', configName: 'app' };
    const agent = await agents.start([
      ...common(),
      '--user',
      key.userId,
      '--config',
      key.configName,
      '--file',
      file,
      '--retry-ms',
      '200',
      '--exec',
      `if [ -e '${notReady}' ]; then echo "the app is not ready" >&2; exit 4; fi; ${appendCommand(log)}`,
    ]);
    await health(agent, 'connected', (b) => b.connected);
    const failures = (version: number): unknown[] =>
      agent.logs.filter(
        (l) => l.msg === 'the version failed; the file holds the previous one' && l.version === version,
      );

    await client.put({ ...key, values: { v: 1 } });
    await until('three failed attempts of version 1', () => failures(1).length >= 3);
    expect(failures(1).slice(0, 3)).toEqual([
      expect.objectContaining({
        retryInMs: 200,
        error: 'the reload command exited with status 4: the app is not ready',
      }),
      expect.objectContaining({ retryInMs: 400 }),
      expect.objectContaining({ retryInMs: 800 }),
    ]);
    // Meanwhile the file is as it was before the version: there was none.
    expect(existsSync(file)).toBe(false);
    expect((await agent.healthz()).body.configs.app).toMatchObject({ version: 0, failedVersion: 1 });

    rmSync(notReady);
    await health(agent, 'version 1 applied', (b) => b.configs.app?.version === 1 && b.configs.app.failedVersion === 0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ v: 1 });
    expect(lines(log)).toEqual(['1']);

    // Version 2 fails; version 3 arrives and replaces it: 3 is tried again, with a fresh interval, and 2 never.
    writeFileSync(notReady, '');
    await client.put({ ...key, values: { v: 2 } });
    await until('version 2 failed', () => failures(2).length >= 1);
    await client.put({ ...key, values: { v: 3 } });
    await until('version 3 failed', () => failures(3).length >= 1);
    expect(failures(3)[0]).toMatchObject({ retryInMs: 200 });
    rmSync(notReady);
    await health(agent, 'version 3 applied', (b) => b.configs.app?.version === 3 && b.configs.app.failedVersion === 0);
    await sleep(600);
    expect(lines(log)).toEqual(['1', '3']);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ v: 3 });
    const tried = agent.logs.filter((l) => l.msg === 'trying the failed version again').map((l) => l.version);
    expect(tried.filter((v) => v === 3).length).toBeGreaterThanOrEqual(1);
    // Version 2 was tried again at most while it was the latest, never after version 3 arrived.
    const thirdArrived = agent.logs.indexOf(failures(3)[0] as Record<string, unknown>);
    expect(
      agent.logs.slice(thirdArrived).some((l) => l.msg === 'trying the failed version again' && l.version === 2),
    ).toBe(false);
    expect(await agents.stop(agent)).toEqual({ code: 0, signal: null });
  });

  it('--signal HUP --pid-file: the signal reaches the process; a pid that is gone is a failure of the version', async () => {
    await ensureServer();
    const dir = freshDir();
    const file = join(dir, 'app.env');
    const pidFile = join(dir, 'app.pid');
    const hups = join(dir, 'hup.log');
    // An "app" that notes each SIGHUP.
    const app = spawn(
      'sh',
      ['-c', `trap 'echo hup >> "${hups}"' HUP; echo $$ > "${pidFile}"; while :; do sleep 0.05; done`],
      {
        stdio: 'ignore',
      },
    );
    try {
      await until(
        'the app to write its pid',
        () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').endsWith('\n'),
      );
      const key = { userId: 'signal', configName: 'app' };
      const agent = await agents.start([
        ...common(),
        '--user',
        key.userId,
        '--config',
        key.configName,
        '--file',
        file,
        '--format',
        'env',
        '--signal',
        'HUP',
        '--pid-file',
        pidFile,
      ]);
      await client.put({ ...key, values: { PORT: 8080 } });
      await until('the SIGHUP', () => lines(hups).length >= 1);
      expect(readFileSync(file, 'utf8')).toBe('PORT=8080\n');

      writeFileSync(pidFile, '999999999\n');
      await client.put({ ...key, values: { PORT: 8081 } });
      const failed = await health(agent, 'version 2 failed', (b) => b.configs.app?.failedVersion === 2);
      expect(failed.body.configs.app?.error).toMatch(/^SIGHUP could not be sent to pid 999999999 .*: ESRCH$/);
      expect(readFileSync(file, 'utf8')).toBe('PORT=8080\n');
      expect(lines(hups)).toHaveLength(1);
      await agents.stop(agent);
    } finally {
      app.kill('SIGKILL');
    }
  });
});

describe('cfgd agent, file formats', () => {
  /** Strings a shell, a dotenv reader or a properties reader could get wrong. */
  const awkward = {
    plain: 'hello',
    spaces: '  two  spaces  ',
    quotes: `it's "quoted"`,
    dollar: '$HOME ${PATH} `id` $(id)',
    hash: 'a # not a comment',
    newlines: 'line 1\nline 2\n',
    unicode: 'héllo wörld ✓ 😀',
    backslash: 'C:\\path\\to\\',
    equals: 'a=b:c',
    empty: '',
    number: 42.5,
    flag: true,
    nothing: null,
  };

  it('YAML, dotenv, Java properties and a Handlebars template read back as the values', async () => {
    await ensureServer();
    const dir = freshDir();
    const template = join(dir, 'app.conf.hbs');
    writeFileSync(
      template,
      '# {{config.configName}} v{{config.version}} of {{config.userId}}\n' +
        'listen {{values.port}}\n' +
        '{{#each values.hosts}}upstream {{this}};\n{{/each}}' +
        'hosts = {{json values.hosts}}\n',
    );
    const user = 'formats';
    const start = (name: string, extra: string[]): Promise<AgentProcess> =>
      agents.start([...common(), '--user', user, '--config', name, '--dir', dir, ...extra]);
    const [yamlAgent, envAgent, propertiesAgent, templateAgent] = await Promise.all([
      start('yaml', ['--format', 'yaml']),
      start('env', ['--format', 'env']),
      start('props', ['--format', 'properties']),
      start('nginx', ['--template', template]),
    ]);

    const yamlValues = { ...awkward, nested: { list: [1, 'two', { deep: true }], 'key: with colon': 'yes' } };
    const propertiesValues = {
      'key with spaces': 'v 1',
      'a=b': 'x=y',
      'c:d': 'p:q',
      ünï: 'çödé ✓ 😀',
      '#hash': '!bang',
      ' lead': ' leading space',
      nested: { list: [1, 'two'], empty: '' },
    };
    await Promise.all([
      client.put({ userId: user, configName: 'yaml', values: yamlValues }),
      client.put({ userId: user, configName: 'env', values: awkward }),
      client.put({ userId: user, configName: 'props', values: propertiesValues }),
      client.put({ userId: user, configName: 'nginx', values: { port: 8080, hosts: ['a.example', 'b.example'] } }),
    ]);
    const ready = (agent: AgentProcess, name: string) =>
      health(agent, `${name} written`, (b) => b.configs[name]?.version === 1);
    await Promise.all([
      ready(yamlAgent, 'yaml'),
      ready(envAgent, 'env'),
      ready(propertiesAgent, 'props'),
      ready(templateAgent, 'nginx'),
    ]);

    expect(parseYaml(readFileSync(join(dir, 'yaml.yaml'), 'utf8'))).toEqual(yamlValues);

    const env = readFileSync(join(dir, 'env.env'), 'utf8');
    const expected = envExpected(awkward);
    expect(shRead(env, Object.keys(expected))).toEqual(expected);
    const dotenv = parseDotenv(env);
    for (const [key, value] of Object.entries(expected)) if (dotenvExact(value)) expect(dotenv[key]).toBe(value);

    const properties = readFileSync(join(dir, 'props.properties'), 'utf8');
    expect(/^[\x20-\x7e\n]*$/.test(properties)).toBe(true);
    expect(propertiesRead(properties)).toEqual(propertiesExpected(propertiesValues));

    expect(readFileSync(join(dir, 'nginx.conf'), 'utf8')).toBe(
      '# nginx v1 of formats\n' +
        'listen 8080\n' +
        'upstream a.example;\nupstream b.example;\n' +
        'hosts = ["a.example","b.example"]\n',
    );
    // Strict: a value the template names but the config lacks fails the version, and the file stays.
    await client.put({ userId: user, configName: 'nginx', values: { hosts: ['c.example'] } });
    const failed = await health(templateAgent, 'version 2 failed', (b) => b.configs.nginx?.failedVersion === 2);
    expect(failed.body.configs.nginx?.error).toMatch(/^render failed: .*app\.conf\.hbs: "port" not defined/);
    expect(readFileSync(join(dir, 'nginx.conf'), 'utf8')).toContain('listen 8080\n');

    // A value the format cannot hold is a failure too: an env key that is no shell variable name.
    await client.put({ userId: user, configName: 'env', values: { 'not-a-name': 'x' } });
    const refused = await health(envAgent, 'version 2 failed', (b) => b.configs.env?.failedVersion === 2);
    expect(refused.body.configs.env?.error).toMatch(/^render failed: .*not-a-name/);
    expect(readFileSync(join(dir, 'env.env'), 'utf8')).toBe(env);
    await Promise.all([yamlAgent, envAgent, propertiesAgent, templateAgent].map((a) => agents.stop(a)));
  });
});

describe('cfgd agent, every config of a user', () => {
  it('writes one file per config, also for a config created later; a deleted config keeps its file; a restart resumes, or renders afresh under new settings', async () => {
    await ensureServer();
    const dir = freshDir();
    const log = join(dir, 'exec.log');
    const user = 'userwatch';
    await client.put({ userId: user, configName: 'a', values: { x: 1 } });
    await client.put({ userId: user, configName: 'b', values: { y: 1 } });
    const args = [
      ...common(),
      '--user',
      user,
      '--dir',
      dir,
      '--format',
      'yaml',
      '--extension',
      'yml',
      '--exec',
      appendCommand(log, '"$CFGD_CONFIG_NAME $CFGD_VERSION"'),
    ];
    const agent = await agents.start(args);
    // Ready once the initial state is applied.
    const initial = await health(agent, 'ready', (_, status) => status === 200);
    expect(Object.keys(initial.body.configs)).toEqual(['a', 'b']);
    expect(parseYaml(readFileSync(join(dir, 'a.yml'), 'utf8'))).toEqual({ x: 1 });
    expect(parseYaml(readFileSync(join(dir, 'b.yml'), 'utf8'))).toEqual({ y: 1 });

    await client.put({ userId: user, configName: 'c', values: { z: 1 } });
    await client.put({ userId: user, configName: 'a', values: { x: 2 } });
    await client.delete({ userId: user, configName: 'b' });
    const after = await health(agent, 'c, a v2, b deleted', (b) => b.configs.b?.deleted === true);
    expect(after.status).toBe(200);
    expect(after.body.configs).toEqual({
      a: { version: 2, file: join(dir, 'a.yml'), failedVersion: 0, error: '' },
      b: { version: 2, file: join(dir, 'b.yml'), failedVersion: 0, error: '', deleted: true },
      c: { version: 1, file: join(dir, 'c.yml'), failedVersion: 0, error: '' },
    });
    expect(parseYaml(readFileSync(join(dir, 'a.yml'), 'utf8'))).toEqual({ x: 2 });
    expect(parseYaml(readFileSync(join(dir, 'b.yml'), 'utf8'))).toEqual({ y: 1 });
    expect(parseYaml(readFileSync(join(dir, 'c.yml'), 'utf8'))).toEqual({ z: 1 });
    expect(agent.logs.some((l) => l.level === 'warn' && l.config === 'b' && String(l.msg).includes('deleted'))).toBe(
      true,
    );
    // The initial state in either order, then the changes in the order they were written; none for the deletion.
    const reloads = lines(log);
    expect(reloads.slice(0, 2).sort()).toEqual(['a 1', 'b 1']);
    expect(reloads.slice(2)).toEqual(['c 1', 'a 2']);
    // The state file follows (it is written after /healthz shows a version): the deletion is recorded as handled.
    await agents.stop(agent);
    const state = JSON.parse(readFileSync(join(dir, '.cfgd-agent.json'), 'utf8'));
    expect(
      Object.fromEntries(Object.entries(state.configs).map(([name, r]: [string, any]) => [name, r.version])),
    ).toEqual({ a: 2, b: 2, c: 1 });

    // Restarted with the same settings: it resumes after what each file holds, so each version written
    // meanwhile is applied (not only the latest), and none of those it had is applied again.
    await client.put({ userId: user, configName: 'a', values: { x: 3 } });
    await client.put({ userId: user, configName: 'a', values: { x: 4 } });
    const again = await agents.start(args);
    await health(again, 'a at version 4', (b, status) => status === 200 && b.configs.a?.version === 4);
    await client.put({ userId: user, configName: 'c', values: { z: 2 } });
    await health(again, 'c at version 2', (b) => b.configs.c?.version === 2);
    expect(lines(log).slice(4)).toEqual(['a 3', 'a 4', 'c 2']);
    expect(parseYaml(readFileSync(join(dir, 'a.yml'), 'utf8'))).toEqual({ x: 4 });
    await agents.stop(again);

    // Restarted with another rendering (a template for the same files): every config is rendered afresh.
    const template = join(dir, 'flat.hbs');
    writeFileSync(template, '{{json values}}\n');
    const rerendered = await agents.start(
      args.map((arg) => (arg === '--format' ? '--template' : arg === 'yaml' ? template : arg)),
    );
    await until('a and c rendered afresh', () => lines(log).length >= 9);
    expect(lines(log).slice(7).sort()).toEqual(['a 4', 'c 2']);
    expect(readFileSync(join(dir, 'a.yml'), 'utf8')).toBe('{"x":4}\n');
    expect(readFileSync(join(dir, 'c.yml'), 'utf8')).toBe('{"z":2}\n');
    await health(rerendered, 'ready', (_, status) => status === 200);
    await agents.stop(rerendered);
  });
});

describe("cfgd agent, when cfgd's store is restored from an older backup", () => {
  it('follows the restored state (a RESYNC to a lower version), then the versions written after it; reports are accepted', async () => {
    // A server of its own: its store is replaced under it.
    const port = await freePort();
    const own = `127.0.0.1:${port}`;
    const data = join(scratch, 'restored-data');
    const backup = join(scratch, 'restored-backup');
    const args = ['--store', data, '--workers', '1', '--grpc-addr', own];
    let node = await nodes.start(args);
    const writer = new CfgdClient({ addresses: [own], backoff: FAST_BACKOFF, deadlineMs: 5000 });
    const user = 'restored';
    const app = { userId: user, configName: 'app' };
    const other = { userId: user, configName: 'other' };
    await writer.put({ ...app, values: { v: 1 } });
    await writer.put({ ...app, values: { v: 2 } });

    const dir = freshDir();
    const file = join(dir, 'app.json');
    const oneLog = join(dir, 'one.log');
    const filesDir = join(dir, 'files');
    mkdirSync(filesDir);
    const dirLog = join(dir, 'dir.log');
    const base = ['--addr', own, '--report-interval-ms', '500', '--user', user];
    const one = await agents.start([
      ...base,
      '--config',
      'app',
      '--file',
      file,
      '--instance-id',
      'one',
      '--exec',
      appendCommand(oneLog),
    ]);
    const all = await agents.start([
      ...base,
      '--dir',
      filesDir,
      '--instance-id',
      'all',
      '--exec',
      appendCommand(dirLog, '"$CFGD_CONFIG_NAME $CFGD_VERSION"'),
    ]);
    await health(one, 'app at 2', (b) => b.configs.app?.version === 2);
    await health(all, 'app at 2', (b) => b.configs.app?.version === 2);

    // The backup: the store as it is at version 2 of app, before `other` existed.
    await nodes.stop(node, 'SIGTERM');
    cpSync(data, backup, { recursive: true });
    node = await nodes.start(args);
    await writer.put({ ...app, values: { v: 3 } });
    await writer.put({ ...other, values: { o: 1 } });
    await health(one, 'app at 3', (b) => b.configs.app?.version === 3);
    await health(all, 'app at 3, other at 1', (b) => b.configs.app?.version === 3 && b.configs.other?.version === 1);

    // Restored: cfgd's app is at version 2 again, and it has no `other`; the agents hold 3 and 1.
    await nodes.stop(node, 'SIGTERM');
    rmSync(data, { recursive: true });
    cpSync(backup, data, { recursive: true });
    node = await nodes.start(args);
    await health(one, 'app back at 2', (b) => b.connected && b.configs.app?.version === 2);
    await health(all, 'app back at 2', (b) => b.connected && b.configs.app?.version === 2);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ v: 2 });
    expect(JSON.parse(readFileSync(join(filesDir, 'app.json'), 'utf8'))).toEqual({ v: 2 });
    // A config the restored store does not have keeps its file.
    expect(JSON.parse(readFileSync(join(filesDir, 'other.json'), 'utf8'))).toEqual({ o: 1 });
    for (const agent of [one, all]) {
      expect(
        agent.logs.some((l) => l.level === 'warn' && l.config === 'app' && l.fileVersion === 3 && l.version === 2),
      ).toBe(true);
    }

    // The versions written after the restore reach the files, though their numbers are ones the agents had.
    await writer.put({ ...app, values: { v: 'after the restore' } });
    await writer.put({ ...other, values: { o: 'after the restore' } });
    await health(one, 'the new app 3', (b) => b.configs.app?.version === 3);
    await health(all, 'the new app 3 and other 1', (b) => b.configs.app?.version === 3 && lines(dirLog).length >= 6);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ v: 'after the restore' });
    expect(JSON.parse(readFileSync(join(filesDir, 'app.json'), 'utf8'))).toEqual({ v: 'after the restore' });
    expect(JSON.parse(readFileSync(join(filesDir, 'other.json'), 'utf8'))).toEqual({ o: 'after the restore' });
    expect(lines(oneLog)).toEqual(['2', '3', '2', '3']);
    // Per config in order; across configs, in the order the watch delivered them.
    const reloads = lines(dirLog);
    expect(reloads.filter((l) => l.startsWith('app '))).toEqual(['app 2', 'app 3', 'app 2', 'app 3']);
    expect(reloads.filter((l) => l.startsWith('other '))).toEqual(['other 1', 'other 1']);
    expect(reloads.indexOf('app 2', 1)).toBe(3);

    // Their reports name versions the restored store has: accepted, and both instances converge.
    await until('both instances report the new version 3', async () => {
      const fleet = await writer.listInstances(app);
      return fleet.converged === 2;
    });
    writer.close();
    await agents.stop(one);
    await agents.stop(all);
    await nodes.stop(node, 'SIGTERM');
  });
});

describe('cfgd agent, with authentication on', () => {
  it('follows and reports with a watch-only token; a token without watch is refused, served files stay, /healthz says why', async () => {
    const secure = await nodes.start(['--store', join(scratch, 'secure-data'), '--workers', '1', '--auth', 'on'], {
      CFGD_ADMIN_TOKEN: TEST_ADMIN_TOKEN,
    });
    const admin = new CfgdClient({ addresses: [secure.address], token: TEST_ADMIN_TOKEN, deadlineMs: 5000 });
    try {
      const key = { userId: 'secure', configName: 'app' };
      const watcher = await admin.createToken({
        name: 'web-agent',
        grants: [{ verb: 'watch', resource: 'users/secure/configs/app' }],
      });
      const reader = await admin.createToken({
        name: 'reader',
        grants: [{ verb: 'read', resource: 'users/secure/configs/app' }],
      });
      await admin.put({ ...key, values: { n: 1 } });
      const dir = freshDir();
      const file = join(dir, 'app.json');
      const args = ['--addr', secure.address, '--report-interval-ms', '1000', '--user', 'secure', '--config', 'app'];

      const agent = await agents.start([...args, '--file', file, '--instance-id', 'secure-1'], {
        CFGD_TOKEN: watcher.secret,
      });
      await health(agent, 'version 1 applied', (body, status) => status === 200 && body.configs.app?.version === 1);
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ n: 1 });
      // The report is the agent's own: it needs no more than watch, and names the token.
      await until('the report of secure-1', async () => (await admin.listInstances(key)).instances.length === 1);
      expect((await admin.listInstances(key)).instances[0]).toMatchObject({
        instanceId: 'secure-1',
        appliedVersion: 1,
        reportedBy: 'token:web-agent',
      });

      // A token that may read but not watch: the watch is refused; the agent stays up and says why.
      const refusedFile = join(dir, 'refused.json');
      const refused = await agents.start([...args, '--file', refusedFile, '--instance-id', 'secure-2'], {
        CFGD_TOKEN: reader.secret,
      });
      const answer = await health(refused, 'the refusal', (body) => body.error !== undefined);
      expect(answer.status).toBe(503);
      expect(answer.body.connected).toBe(false);
      expect(answer.body.error).toMatch(/PERMISSION_DENIED/);
      expect(existsSync(refusedFile)).toBe(false);
      expect(refused.child.exitCode).toBe(null);
      expect((await admin.listInstances(key)).instances.map((each) => each.instanceId)).toEqual(['secure-1']);
      await agents.stop(refused);
      await agents.stop(agent);
    } finally {
      admin.close();
      await nodes.stop(secure, 'SIGTERM');
    }
  });
});

describe('cfgd agent, command line', () => {
  it('a usage mistake exits 64 with one line on stderr', async () => {
    const runs = await Promise.all([
      runAgent(['--user', 'u']),
      runAgent(['--user', 'u', '--dir', scratch, '--format', 'toml']),
      runAgent(['--user', 'u', '--config', 'c', '--file', join(scratch, 'x'), '--exec', 'true', '--signal', 'HUP']),
      runAgent(['--user', 'u', '--dir', scratch, '--health-addr', 'nowhere']),
      runAgent(['--user', 'u', '--dir', scratch, '--template', join(scratch, 'missing.hbs'), '--extension', 'conf']),
    ]);
    for (const run of runs) {
      expect(run.code).toBe(64);
      expect(run.stderr).toMatch(/^cfgd: agent: [^\n]+\n$/);
      expect(run.stdout).toBe('');
    }
    expect(runs.map((r) => r.stderr)).toEqual([
      'cfgd: agent: give either --file PATH (with --config) or --dir DIR\n',
      'cfgd: agent: --format must be one of json, yaml, env, properties, got "toml"\n',
      'cfgd: agent: give --exec or --signal with --pid-file, not both\n',
      'cfgd: agent: --health-addr must be HOST:PORT (port 0 picks a free one), got "nowhere"\n',
      `cfgd: agent: --template ${join(scratch, 'missing.hbs')} cannot be read: ENOENT\n`,
    ]);
  });
});
