/**
 * The `cfgd` command, run as a real process (src/cli.ts, as `npx cfgd` runs
 * its build) against a real server with authentication on: outputs, exit
 * codes (the gRPC status of a failed call, 64 for a usage mistake) and
 * one-line errors.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DEFAULTS } from '../../src/settings/settings.js';
import { CfgdClient } from '../../src/client/index.js';
import { TEST_ADMIN_TOKEN } from '../helpers/auth.js';
import { runCfgdCommand, type CommandRun } from '../helpers/process.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EXIT_USAGE = 64;

// Each test runs the command several times, each a Node process compiling TypeScript at start.
vi.setConfig({ testTimeout: 180_000 });

let server: TestServer;
let dir: string;

beforeAll(async () => {
  server = await startTestServer({ auth: { ...DEFAULTS.auth, mode: 'on', adminToken: TEST_ADMIN_TOKEN } });
  dir = mkdtempSync(join(tmpdir(), 'cfgd-cli-'));
});

afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `cfgd args…` as the admin (unless `env` says otherwise), with `stdin` piped in. */
function cfgd(
  args: string[],
  options: { stdin?: string; env?: Record<string, string | undefined> } = {},
): Promise<CommandRun> {
  return runCfgdCommand(args, {
    stdin: options.stdin,
    env: {
      CFGD_ADDR: `127.0.0.1:${server.cfgd.grpcPort}`,
      CFGD_TOKEN: TEST_ADMIN_TOKEN,
      CFGD_DEADLINE_MS: '5000',
      ...options.env,
    },
  });
}

let counter = 0;
const fresh = (): string => `cli/c${++counter}-${Date.now()}`;

describe('cfgd put, get, patch, history, diff', () => {
  it('puts values from an argument, a YAML file and stdin, and gets them back as JSON and YAML', async () => {
    const config = fresh();
    expect(await cfgd(['put', config, '{"a": 1, "b": "x"}'])).toEqual({ code: 0, stdout: 'version 1\n', stderr: '' });
    const file = join(dir, 'values.yaml');
    writeFileSync(file, 'a: 2\nlist: [1, "two"]\nnested:\n  on: true\n');
    expect((await cfgd(['put', config, '-f', file])).stdout).toBe('version 2\n');
    const got = await cfgd(['get', config]);
    expect(got.code).toBe(0);
    expect(JSON.parse(got.stdout)).toEqual({ a: 2, list: [1, 'two'], nested: { on: true } });
    expect(parseYaml((await cfgd(['get', config, '-o', 'yaml'])).stdout)).toEqual(JSON.parse(got.stdout));
    expect((await cfgd(['put', config, '-f', '-'], { stdin: '{"a": 3}' })).stdout).toBe('version 3\n');
    expect(JSON.parse((await cfgd(['get', config, '--version', '1'])).stdout)).toEqual({ a: 1, b: 'x' });
    // The same values again: no version.
    expect((await cfgd(['put', config, '{"a": 3}'])).stdout).toBe('unchanged at version 3\n');
    expect(JSON.parse((await cfgd(['put', config, '{"a": 4}', '-o', 'json'])).stdout)).toEqual({
      version: 4,
      changed: true,
    });
  });

  it('patches with a merge patch, shows the history as a table and as JSON, and diffs two versions', async () => {
    const config = fresh();
    await cfgd(['put', config, '{"a": 1, "b": "x", "c": true}']);
    expect((await cfgd(['patch', config, '{"a": 2, "b": null, "d": [1]}'])).stdout).toBe('version 2\n');
    expect(JSON.parse((await cfgd(['get', config])).stdout)).toEqual({ a: 2, c: true, d: [1] });

    const table = (await cfgd(['history', config])).stdout.trimEnd().split('\n');
    expect(table[0]).toMatch(/^VERSION\s+TIME\s+AUTHOR\s+OPERATION\s+CHANGES$/);
    expect(table).toHaveLength(3);
    expect(table[1]).toMatch(/^1\s+\S+Z\s+token:admin\s+PUT\s+\+a \+b \+c$/);
    expect(table[2]).toMatch(/^2\s+\S+Z\s+token:admin\s+PATCH\s+~a -b \+d$/);
    const entries = JSON.parse((await cfgd(['history', config, '-o', 'json'])).stdout) as Record<string, unknown>[];
    expect(entries.map((e) => [e.version, e.operation])).toEqual([
      [1, 'OPERATION_PUT'],
      [2, 'OPERATION_PATCH'],
    ]);

    const diff = await cfgd(['diff', config, '1', '2']);
    expect(diff.stdout).toBe('~ a: 1 → 2\n- b: "x"\n+ d: [1]\n');
    // Not a terminal: no colour unless asked for.
    expect((await cfgd(['diff', config, '1', '--color', 'always'])).stdout).toContain('\u001b[32m+ d: [1]\u001b[0m');
  });

  it('rolls back, deletes and lists', async () => {
    const config = fresh();
    const [user, name] = config.split('/') as [string, string];
    await cfgd(['put', config, '{"v": 1}']);
    await cfgd(['put', config, '{"v": 2}']);
    expect((await cfgd(['rollback', config, '1'])).stdout).toBe('version 3\n');
    expect(JSON.parse((await cfgd(['get', config])).stdout)).toEqual({ v: 1 });
    const listed = (await cfgd(['list', user])).stdout;
    expect(listed.split('\n')[0]).toMatch(/^NAME\s+VERSION\s+UPDATED\s+DELETED$/);
    expect(listed).toMatch(new RegExp(`^${name}\\s+3\\s`, 'm'));
    expect((await cfgd(['delete', config])).stdout).toBe('version 4\n');
    const gone = await cfgd(['get', config]);
    expect(gone.code).toBe(status.NOT_FOUND);
    expect(gone.stderr).toMatch(/^cfgd: NOT_FOUND CONFIG_DELETED: .+\n$/);
    expect((await cfgd(['list', user])).stdout).not.toMatch(new RegExp(`^${name}\\s`, 'm'));
    expect((await cfgd(['list', user, '--deleted'])).stdout).toMatch(new RegExp(`^${name}\\s+4\\s.*yes$`, 'm'));
  });

  it('watches: one line per change, and every event as JSON', async () => {
    const config = fresh();
    await cfgd(['put', config, '{"a": 1}']);
    await cfgd(['put', config, '{"a": 2, "b": 1}']);
    const lines = (await cfgd(['watch', config, '--start-version', '0', '--count', '2'])).stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/ v1 \S+Z token:admin PUT \+a$/);
    expect(lines[1]).toMatch(/ v2 \S+Z token:admin PUT ~a \+b$/);
    // From a version this store does not have (it was restored from an older backup): the state, marked.
    const restored = (await cfgd(['watch', config, '--start-version', '9', '--count', '1'])).stdout;
    expect(restored).toMatch(/ v2 \S+Z token:admin RESYNC \(the current state: reload from it\)\n$/);
    const events = (await cfgd(['watch', config, '--events', '--count', '1'])).stdout.trimEnd().split('\n');
    expect(events.map((line) => JSON.parse(line) as { type: string; config: { version: number } })).toMatchObject([
      { type: 'WATCH_EVENT_TYPE_VERSION', config: { version: 2 } },
    ]);
  });
});

describe('cfgd token and schema', () => {
  it('creates a token that works with its grants only, lists it and revokes it', async () => {
    const config = fresh();
    const [user] = config.split('/') as [string];
    await cfgd(['put', config, '{"a": 1}']);
    const created = await cfgd(['token', 'create', 'reader', '--grant', `read:users/${user}/configs/*`]);
    expect(created.code).toBe(0);
    const secret = created.stdout.trim();
    expect(secret).toMatch(/^cfgd_/);
    const asReader = { env: { CFGD_TOKEN: secret } };
    expect(JSON.parse((await cfgd(['get', config], asReader)).stdout)).toEqual({ a: 1 });
    const denied = await cfgd(['put', config, '{"a": 2}'], asReader);
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    expect(denied.stderr).toMatch(/^cfgd: PERMISSION_DENIED: token:reader may not write .+\n$/);

    const tokens = JSON.parse((await cfgd(['token', 'list', '-o', 'json'])).stdout) as { id: string; name: string }[];
    const id = tokens.find((token) => token.name === 'reader')?.id;
    expect(id).toBeDefined();
    expect((await cfgd(['token', 'list'])).stdout).toMatch(/^\S+\s+reader\s+.*read:users\//m);
    expect((await cfgd(['token', 'revoke', id!])).stdout).toBe(`revoked ${id}\n`);
    const revoked = await cfgd(['get', config], asReader);
    expect(revoked.code).toBe(status.UNAUTHENTICATED);
    expect(revoked.stderr).toMatch(/^cfgd: UNAUTHENTICATED TOKEN_REVOKED: .+\n$/);
  });

  it('sets and gets a schema, and a write that breaks it fails with its field', async () => {
    const config = fresh();
    await cfgd(['put', config, '{"port": 80}']);
    const schema = '{"type": "object", "properties": {"port": {"type": "integer", "maximum": 65535}}}';
    expect((await cfgd(['schema', 'set', config, schema])).stdout).toBe('schema version 1\n');
    expect(JSON.parse((await cfgd(['schema', 'get', config])).stdout)).toEqual(JSON.parse(schema));
    const refused = await cfgd(['put', config, '{"port": 70000}']);
    expect(refused.code).toBe(status.INVALID_ARGUMENT);
    expect(refused.stderr.split('\n')).toHaveLength(2);
    expect(refused.stderr).toMatch(/^cfgd: INVALID_ARGUMENT \w+: .*port.*\n$/);
  });
});

describe('cfgd status', () => {
  it('shows which instance runs which version, marks the failing one, and --check exits 1 until all converge', async () => {
    const config = fresh();
    const [userId, configName] = config.split('/') as [string, string];
    await cfgd(['put', config, '{"v": 1}']);
    await cfgd(['put', config, '{"v": 2}']);
    const client = new CfgdClient({ addresses: [`127.0.0.1:${server.cfgd.grpcPort}`], token: TEST_ADMIN_TOKEN });
    try {
      await client.reportInstance({ userId, configName, instanceId: 'web-1', appliedVersion: 2 });
      await client.reportInstance({
        userId,
        configName,
        instanceId: 'web-2',
        appliedVersion: 1,
        failedVersion: 2,
        error: 'reload: exit status 3',
      });
      const shown = await cfgd(['status', config]);
      expect(shown.code).toBe(0);
      const lines = shown.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^latest version 2: 1 of 2 instances run it/);
      expect(lines[1]).toMatch(/^INSTANCE\s+APPLIED\s+STATE\s+FAILED\s+LAST REPORT\s+ERROR$/);
      expect(lines[2]).toMatch(/^web-1\s+2\s+current\s+\d+s ago$/);
      expect(lines[3]).toMatch(/^web-2\s+1\s+FAILING\s+2\s+\d+s ago\s+reload: exit status 3$/);
      expect(await cfgd(['status', config, '--check'])).toMatchObject({ code: 1 });
      const json = JSON.parse((await cfgd(['status', config, '-o', 'json'])).stdout) as {
        latestVersion: number;
        converged: number;
        instances: { instanceId: string; failedVersion?: number }[];
      };
      expect(json).toMatchObject({ latestVersion: 2, converged: 1 });
      // proto3 JSON leaves out fields at their default (a failed version of 0).
      expect(json.instances.map((each) => [each.instanceId, each.failedVersion ?? 0])).toEqual([
        ['web-1', 0],
        ['web-2', 2],
      ]);
      await client.reportInstance({ userId, configName, instanceId: 'web-2', appliedVersion: 2 });
      expect(await cfgd(['status', config, '--check'])).toMatchObject({ code: 0 });
    } finally {
      client.close();
    }
  });
});

describe('cfgd exit codes and errors', () => {
  it('exits with the gRPC code of a failed call and says why on one line', async () => {
    const missing = await cfgd(['get', 'cli/never-written']);
    expect(missing).toMatchObject({ code: status.NOT_FOUND, stdout: '' });
    expect(missing.stderr).toBe('cfgd: NOT_FOUND CONFIG_NOT_FOUND: users/cli/configs/never-written does not exist\n');

    const config = fresh();
    await cfgd(['put', config, '{"a": 1}']);
    const conflict = await cfgd(['put', config, '{"a": 2}', '--expected-version', '7']);
    expect(conflict.code).toBe(status.ABORTED);
    expect(conflict.stderr).toMatch(/^cfgd: ABORTED VERSION_MISMATCH: /);

    const anonymous = await cfgd(['get', config], { env: { CFGD_TOKEN: undefined } });
    expect(anonymous.code).toBe(status.UNAUTHENTICATED);
    expect(anonymous.stderr).toMatch(/^cfgd: UNAUTHENTICATED TOKEN_MISSING: /);

    const badName = await cfgd(['get', 'cli/bad name']);
    expect(badName.code).toBe(status.INVALID_ARGUMENT);
    expect(badName.stderr).toMatch(/^cfgd: INVALID_ARGUMENT NAME_INVALID: .*\(config_name: .+\)\n$/);

    const unreachable = await cfgd(['get', config], { env: { CFGD_ADDR: '127.0.0.1:1', CFGD_DEADLINE_MS: '500' } });
    expect(unreachable.code).toBe(status.UNAVAILABLE);
    expect(unreachable.stderr.split('\n')).toHaveLength(2);
  });

  it('exits 64 for a mistake in the command line or its input, before calling the server', async () => {
    for (const args of [
      ['get', 'no-slash'],
      ['bogus'],
      ['put', 'cli/x'],
      ['put', 'cli/x', '[1, 2]'],
      ['put', 'cli/x', '{"a": '],
      ['get', 'cli/x', '--version', 'latest'],
      ['token', 'create', 'x', '--grant', 'nocolon'],
      ['get', 'cli/x', '-o', 'xml'],
    ]) {
      const run = await cfgd(args, { env: { CFGD_ADDR: '127.0.0.1:1' } });
      expect(run.code, args.join(' ')).toBe(EXIT_USAGE);
      expect(run.stderr, args.join(' ')).not.toBe('');
    }
    expect((await cfgd(['--help'])).code).toBe(0);
  });

  it('cfgd serve runs the server with its own flags', async () => {
    const store = join(dir, 'served');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli.ts',
        'serve',
        '--auth',
        'off',
        '--store',
        store,
        '--workers',
        '1',
        '--grpc-addr',
        '127.0.0.1:0',
        '--http-addr',
        '127.0.0.1:0',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    try {
      const grpc = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('cfgd serve did not listen in time')), 30_000);
        let buffered = '';
        child.stdout.on('data', (chunk: Buffer) => {
          buffered += chunk.toString();
          for (const line of buffered.split('\n')) {
            if (!line.includes('"cfgd listening"')) continue;
            clearTimeout(timer);
            resolve(String((JSON.parse(line) as { grpc: string }).grpc));
          }
        });
      });
      const put = await cfgd(['put', 'served/app', '{"ok": true}'], {
        env: { CFGD_ADDR: grpc, CFGD_TOKEN: undefined },
      });
      expect(put).toMatchObject({ code: 0, stdout: 'version 1\n' });
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
});
