import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { CfgdError } from '../../domain/index.js';
import { HttpStatusError } from '../status.js';
import { noneMatch, type Route } from './http.js';
import { literalTemplate, parseTemplate } from './path-template.js';

/** One file of the built console, held in memory. */
interface ConsoleFile {
  readonly body: Buffer;
  readonly contentType: string;
  readonly etag: string;
}

/** The built console (`npm run build` writes it to `dist/console/`): its files by name. */
export type ConsoleFiles = ReadonlyMap<string, ConsoleFile>;

const MEDIA_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * What every console response carries. The console runs only its own script
 * and talks only to this origin's API; it may not be framed (clickjacking),
 * sends no referrer, and its responses are revalidated (their ETag) so that a
 * new build is picked up at once. CodeMirror styles its editor with style
 * elements, hence `'unsafe-inline'` for styles (never for scripts).
 */
const HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; " +
    "img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/**
 * Reads the built console from `dir` (its top-level files; the build writes
 * no subdirectories): undefined when there is no `index.html` there (not built).
 */
export function loadConsoleFiles(dir: string): ConsoleFiles | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  if (!names.includes('index.html')) return undefined;
  const files = new Map<string, ConsoleFile>();
  for (const name of names) {
    const path = join(dir, name);
    const type = MEDIA_TYPES[extname(name)];
    if (type === undefined || !statSync(path).isFile()) continue;
    const body = readFileSync(path);
    files.set(name, {
      body,
      contentType: type,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
    });
  }
  return files;
}

/**
 * The web console, served at `/ui/` from the files of `loadConsoleFiles`. The
 * routes are open: the files are the same for everyone and hold no data; the
 * console signs in with a token and calls the API like any client, so it has
 * no privileges of its own. Without a build, `/ui/` answers 503 saying so.
 */
export function consoleRoutes(files: ConsoleFiles | undefined): Route[] {
  const send = (name: string): Route['handle'] =>
    async function serve({ req, res }) {
      if (files === undefined) {
        throw new CfgdError('unavailable', 'CONSOLE_NOT_BUILT', 'the web console is not built: run npm run build');
      }
      const file = files.get(name);
      if (file === undefined) {
        throw new HttpStatusError(404, 'not-found', 'ROUTE_NOT_FOUND', `the console has no file ${name}`);
      }
      if (noneMatch(req, file.etag)) {
        res.writeHead(304, { etag: file.etag, ...HEADERS });
        res.end();
        return;
      }
      res.writeHead(200, {
        'content-type': file.contentType,
        'content-length': file.body.length,
        etag: file.etag,
        ...HEADERS,
      });
      res.end(file.body);
    };
  return [
    {
      method: 'GET',
      template: literalTemplate('/ui'),
      name: 'GET /ui',
      streaming: false,
      open: true,
      async handle({ res }) {
        res.writeHead(308, { location: '/ui/', 'content-length': 0 });
        res.end();
      },
    },
    {
      method: 'GET',
      template: literalTemplate('/ui/'),
      name: 'GET /ui/',
      streaming: false,
      open: true,
      handle: send('index.html'),
    },
    {
      method: 'GET',
      template: parseTemplate('/ui/{file}'),
      name: 'GET /ui/{file}',
      streaming: false,
      open: true,
      async handle(exchange) {
        return send(exchange.params.file ?? '')(exchange);
      },
    },
  ];
}
