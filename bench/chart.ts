/**
 * A dependency-free SVG drawn from the results JSON: the watch fan-out curve (last delivery
 * p99, from sending the write, by watchers; log-log) and the cfgd ÷ etcd ratios.
 * `npm run bench:chart` redraws bench/results/latest.svg from latest.json.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Stat {
  median: number;
}
interface Result {
  figures: Record<string, Record<string, Record<string, Stat>>>;
  ratios: Record<string, Record<string, Stat>>;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function renderChart(result: Result): string {
  const width = 900;
  const parts: string[] = [];
  // Left: fan-out curve.
  const [x0, y0, w, h] = [70, 40, 330, 260];
  const series = Object.entries(result.figures)
    .map(([target, workloads]) => ({
      target,
      points: Object.entries(workloads)
        .filter(([name]) => name.startsWith('fanout_'))
        .map(([name, f]) => [Number(name.slice(7)), f.last_from_send_p99_ms?.median ?? Number.NaN] as [number, number])
        .filter(([, y]) => Number.isFinite(y) && y > 0)
        .sort((a, b) => a[0] - b[0]),
    }))
    .filter((s) => s.points.length > 0);
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const [xmin, xmax] = [Math.log10(Math.min(...xs, 100)), Math.log10(Math.max(...xs, 1000))];
  const [ylo, yhi] = [
    Math.floor(Math.log10(Math.max(0.1, Math.min(...ys, 1)))),
    Math.ceil(Math.log10(Math.max(10, ...ys))),
  ];
  const px = (x: number) => x0 + ((Math.log10(x) - xmin) / Math.max(0.001, xmax - xmin)) * w;
  const py = (y: number) => y0 + h - ((Math.log10(y) - ylo) / Math.max(1, yhi - ylo)) * h;
  parts.push(
    `<text x="${x0 - 60}" y="24" font-size="14" font-weight="bold">Watch fan-out: write sent → last watcher, p99 (ms, log)</text>`,
  );
  parts.push(
    `<line x1="${x0}" y1="${y0 + h}" x2="${x0 + w}" y2="${y0 + h}" stroke="#333"/><line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y0 + h}" stroke="#333"/>`,
  );
  for (const x of [...new Set(xs)])
    parts.push(`<text x="${px(x)}" y="${y0 + h + 16}" font-size="11" text-anchor="middle">${x}</text>`);
  for (let e = ylo; e <= yhi; e++) {
    const y = 10 ** e;
    parts.push(
      `<text x="${x0 - 6}" y="${py(y) + 4}" font-size="11" text-anchor="end">${y >= 1 ? y.toFixed(0) : y}</text>`,
    );
    parts.push(`<line x1="${x0}" y1="${py(y)}" x2="${x0 + w}" y2="${py(y)}" stroke="#eee"/>`);
  }
  parts.push(
    `<text x="${x0 + w / 2}" y="${y0 + h + 32}" font-size="11" text-anchor="middle">watchers (log scale)</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${s.points.map(([x, y]) => `${px(x)},${py(y)}`).join(' ')}"/>`,
    );
    for (const [x, y] of s.points) parts.push(`<circle cx="${px(x)}" cy="${py(y)}" r="3" fill="${color}"/>`);
    parts.push(`<text x="${x0 + 10}" y="${y0 + 14 + i * 14}" font-size="11" fill="${color}">${esc(s.target)}</text>`);
  });
  // Right: ratios against etcd.
  const ratios = Object.entries(result.ratios['cfgd ÷ etcd'] ?? {}).filter(
    ([, s]) => Number.isFinite(s.median) && s.median > 0,
  );
  const [rx, ry, rw] = [520, 40, 260];
  parts.push(`<text x="${rx - 60}" y="24" font-size="14" font-weight="bold">cfgd ÷ etcd (1 = equal; log scale)</text>`);
  const rmax = Math.max(2, ...ratios.map(([, s]) => Math.max(s.median, 1 / s.median)));
  const lx = (v: number) => rx + rw / 2 + (Math.log10(v) / Math.log10(rmax)) * (rw / 2);
  const rowH = Math.min(18, 300 / Math.max(1, ratios.length));
  parts.push(`<line x1="${lx(1)}" y1="${ry}" x2="${lx(1)}" y2="${ry + rowH * ratios.length}" stroke="#333"/>`);
  ratios.forEach(([name, s], i) => {
    const y = ry + i * rowH;
    const [a, b] = [lx(1), lx(s.median)];
    parts.push(
      `<rect x="${Math.min(a, b)}" y="${y + 2}" width="${Math.abs(b - a)}" height="${rowH - 4}" fill="${s.median >= 1 ? '#7fa7d6' : '#e59a9a'}"/>`,
    );
    parts.push(`<text x="${rx - 64}" y="${y + rowH - 5}" font-size="9" text-anchor="end">${esc(name)}</text>`);
    parts.push(`<text x="${rx + rw + 4}" y="${y + rowH - 5}" font-size="9">${s.median.toFixed(2)}</text>`);
  });
  const height = Math.max(340, ry + rowH * ratios.length + 20);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>\n`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = fileURLToPath(new URL('results/', import.meta.url));
  writeFileSync(`${dir}latest.svg`, renderChart(JSON.parse(readFileSync(`${dir}latest.json`, 'utf8')) as Result));
}
