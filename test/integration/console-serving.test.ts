/**
 * The web console's files at /ui/, over real HTTP: what the build wrote,
 * with its media types, ETags and the headers that confine it (a content
 * security policy that runs only its own script, no framing); a server
 * without a build says so; `--console-dir off` serves nothing.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/settings/settings.js';
import { TEST_ADMIN_TOKEN } from '../helpers/auth.js';
import { http } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const INDEX = '<!doctype html><title>cfgd</title><script src="app.js"></script>';
const APP = 'document.title = "cfgd";';

let dir: string;
let built: TestServer;
let unbuilt: TestServer;
let off: TestServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cfgd-console-'));
  const build = join(dir, 'console');
  const empty = join(dir, 'empty');
  mkdirSync(build);
  for (const [path, text] of [
    [join(build, 'index.html'), INDEX],
    [join(build, 'app.js'), APP],
    [join(build, 'app.css'), 'body { margin: 0 }'],
    [join(build, 'notes.md'), 'not served: no media type'],
  ]) {
    writeFileSync(path!, text!);
  }
  const auth = { ...DEFAULTS.auth, mode: 'on' as const, adminToken: TEST_ADMIN_TOKEN };
  [built, unbuilt, off] = await Promise.all([
    startTestServer({ auth, consoleDir: build }),
    startTestServer({ auth, consoleDir: empty }),
    startTestServer({ auth, consoleDir: undefined }),
  ]);
});

afterAll(async () => {
  await Promise.all([built, unbuilt, off].map((server) => server?.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe('the web console at /ui/', () => {
  it('serves the build without credentials, with its media types and confining headers', async () => {
    const index = await http(built.cfgd.httpPort, 'GET', '/ui/');
    expect(index.status).toBe(200);
    expect(index.text).toBe(INDEX);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(index.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe/);
    expect(index.headers['x-content-type-options']).toBe('nosniff');
    expect(index.headers['x-frame-options']).toBe('DENY');
    expect(index.headers['referrer-policy']).toBe('no-referrer');

    const app = await http(built.cfgd.httpPort, 'GET', '/ui/app.js');
    expect(app.status).toBe(200);
    expect(app.text).toBe(APP);
    expect(app.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect((await http(built.cfgd.httpPort, 'GET', '/ui/app.css')).headers['content-type']).toBe(
      'text/css; charset=utf-8',
    );
  });

  it('answers a matching If-None-Match with 304, and another build with a new ETag', async () => {
    const first = await http(built.cfgd.httpPort, 'GET', '/ui/app.js');
    const etag = String(first.headers.etag);
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    const again = await http(built.cfgd.httpPort, 'GET', '/ui/app.js', { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
    const index = await http(built.cfgd.httpPort, 'GET', '/ui/', { headers: { 'if-none-match': etag } });
    expect(index.status).toBe(200);
    expect(index.headers.etag).not.toBe(etag);
  });

  it('redirects /ui to /ui/, and answers 404 for a file the build does not have', async () => {
    const redirect = await http(built.cfgd.httpPort, 'GET', '/ui');
    expect(redirect.status).toBe(308);
    expect(redirect.headers.location).toBe('/ui/');
    for (const path of ['/ui/missing.js', '/ui/notes.md', '/ui/..%2Fpackage.json', '/ui/%2e%2e']) {
      const response = await http(built.cfgd.httpPort, 'GET', path);
      expect(response.status, path).toBe(404);
      expect(response.json.error.details[0].reason, path).toBe('ROUTE_NOT_FOUND');
    }
    expect((await http(built.cfgd.httpPort, 'GET', '/ui/sub/app.js')).status).toBe(404);
    expect((await http(built.cfgd.httpPort, 'POST', '/ui/')).status).toBe(405);
  });

  it('says so when the console is not built, and serves nothing with --console-dir off', async () => {
    const response = await http(unbuilt.cfgd.httpPort, 'GET', '/ui/');
    expect(response.status).toBe(503);
    expect(response.json.error.details[0].reason).toBe('CONSOLE_NOT_BUILT');
    expect(response.json.error.message).toContain('npm run build');
    const none = await http(off.cfgd.httpPort, 'GET', '/ui/');
    expect(none.status).toBe(404);
    expect(off.cfgd.routes.some((route) => route.path.startsWith('/ui'))).toBe(false);
  });
});
