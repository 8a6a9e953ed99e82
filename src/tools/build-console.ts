/**
 * Builds the web console (src/console/) into dist/console/: index.html, app.js and app.css,
 * minified for ES2020 browsers, without source maps. The output depends only on the sources and
 * the locked dependencies, so a build is reproducible byte for byte. Prints each file's size,
 * raw and gzipped. Run by `npm run build` (and `npm run build:console`).
 */
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SOURCE = join(ROOT, 'src', 'console');
const OUT = join(ROOT, 'dist', 'console');
/** The files the build writes; cfgd serves them at /ui/. */
const FILES = ['index.html', 'app.js', 'app.css'];

// Built beside the output and moved into place, so that a server starting meanwhile finds the old
// build or the new one, never half of one.
const NEXT = `${OUT}.next-${process.pid}`;
rmSync(NEXT, { recursive: true, force: true });
mkdirSync(NEXT, { recursive: true });

await build({
  absWorkingDir: ROOT,
  entryPoints: { app: join(SOURCE, 'main.tsx') },
  outdir: NEXT,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  sourcemap: false,
  // License notices of the bundled libraries stay, at the end of the file.
  legalComments: 'eof',
  charset: 'utf8',
  tsconfig: join(SOURCE, 'tsconfig.json'),
  jsx: 'automatic',
  jsxImportSource: 'preact',
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
});
copyFileSync(join(SOURCE, 'index.html'), join(NEXT, 'index.html'));
const PREVIOUS = `${OUT}.previous-${process.pid}`;
if (existsSync(OUT)) renameSync(OUT, PREVIOUS);
renameSync(NEXT, OUT);
rmSync(PREVIOUS, { recursive: true, force: true });

const rows = FILES.map((name) => {
  const body = readFileSync(join(OUT, name));
  return { name, raw: body.length, gzip: gzipSync(body, { level: 9 }).length };
});
const total = rows.reduce((sum, row) => ({ raw: sum.raw + row.raw, gzip: sum.gzip + row.gzip }), { raw: 0, gzip: 0 });
const kb = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`.padStart(10);
console.log(`web console built in ${relative(process.cwd(), OUT) || '.'}/`);
for (const row of [...rows, { name: 'total', ...total }]) {
  console.log(`  ${row.name.padEnd(11)}${kb(row.raw)}${kb(row.gzip)} gzip`);
}
