/**
 * Authentication on by default, as `npm start` runs cfgd: a fresh store gets
 * an admin token in a file only its owner can read, whose path (never the
 * token) is logged; an operator's own token can replace it; `--auth off` says
 * loudly that everything is open.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers/auth.js';
import { http } from '../helpers/http.js';
import { spawnCfgd, type CfgdProcess } from '../helpers/process.js';

const dirs: string[] = [];
const running: CfgdProcess[] = [];
afterAll(async () => {
  for (const node of running) node.child.kill('SIGTERM');
  await Promise.all(running.map((node) => node.exited));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cfgd-auth-'));
  dirs.push(dir);
  return dir;
}

async function start(args: string[], env: Record<string, string> = {}): Promise<CfgdProcess> {
  const node = await spawnCfgd(args, { CFGD_AUTH: 'on', ...env });
  running.push(node);
  return node;
}

async function stop(node: CfgdProcess): Promise<void> {
  node.child.kill('SIGTERM');
  await node.exited;
}

async function whoAmI(node: CfgdProcess, secret: string): Promise<{ status: number; principal?: string }> {
  const response = await http(node.httpPort, 'GET', '/v1/whoami', { headers: { authorization: bearer(secret) } });
  return { status: response.status, principal: response.json?.principal };
}

describe('the bootstrap admin token', () => {
  it('is created on a fresh store, written to a 0600 file whose path is logged, and kept across restarts', async () => {
    const dir = freshDir();
    const first = await start(['--store', dir]);
    const file = join(dir, 'admin.token');
    const created = first.logs.find((line) => line.tokenFile !== undefined);
    expect(created?.tokenFile).toBe(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const secret = readFileSync(file, 'utf8').trim();
    expect(secret).toMatch(/^cfgd_[A-Za-z0-9_-]{43}$/);
    expect(await whoAmI(first, secret)).toEqual({ status: 200, principal: 'token:admin' });
    expect(JSON.stringify(first.logs)).not.toContain(secret);
    await stop(first);

    const second = await start(['--store', dir]);
    expect(second.logs.some((line) => line.tokenFile !== undefined)).toBe(false);
    expect(readFileSync(file, 'utf8').trim()).toBe(secret);
    expect(await whoAmI(second, secret)).toEqual({ status: 200, principal: 'token:admin' });
    await stop(second);
  });

  it("is replaced by the operator's --admin-token (CFGD_ADMIN_TOKEN), which is how a lost one is recovered", async () => {
    const dir = freshDir();
    const first = await start(['--store', dir]);
    const generated = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
    await stop(first);
    const chosen = 'operator-chosen-admin-token-0123456789';
    const second = await start(['--store', dir], { CFGD_ADMIN_TOKEN: chosen });
    expect(await whoAmI(second, chosen)).toEqual({ status: 200, principal: 'token:admin' });
    expect((await whoAmI(second, generated)).status).toBe(401);
    expect(JSON.stringify(second.logs)).not.toContain(chosen);
    await stop(second);
  });

  it('with --auth off, lets everyone in as anonymous and warns at start', async () => {
    const node = await start(['--store', freshDir(), '--auth', 'off']);
    expect(node.logs.some((line) => line.level === 'warn' && String(line.msg).includes('authentication is off'))).toBe(
      true,
    );
    const response = await http(node.httpPort, 'GET', '/v1/whoami');
    expect(response.json).toMatchObject({ principal: 'anonymous', kind: 'anonymous' });
    await stop(node);
  });

  it('refuses to start with --auth off on a non-loopback address unless the operator accepts an open service', async () => {
    await expect(
      spawnCfgd(['--store', freshDir(), '--auth', 'off', '--http-addr', '0.0.0.0:0', '--allow-plaintext']),
    ).rejects.toThrow(/--auth off on a non-loopback address/);
  });
});
