import { createRequire } from 'node:module';
import { http } from './http.js';

/** One series of a family as parse-prometheus-text-format gives it (every number as the text it was). */
export interface MetricSample {
  readonly labels?: Readonly<Record<string, string>>;
  /** Counters, gauges and untyped samples. */
  readonly value?: string;
  /** Histograms: cumulative counts by upper bound (`le`, which is not among the labels). */
  readonly buckets?: Readonly<Record<string, string>>;
  readonly count?: string;
  readonly sum?: string;
}

export interface MetricFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  readonly metrics: readonly MetricSample[];
}

// parse-prometheus-text-format ships no types (and a CommonJS main): its one export, typed as its
// README describes the result, without an ambient declaration.
const require = createRequire(import.meta.url);
const parsePrometheusTextFormat = require('parse-prometheus-text-format') as (text: string) => MetricFamily[];

/** What a subset of labels picks: every series whose labels hold these values. */
type LabelFilter = Readonly<Record<string, string>>;

/** One line of a scrape: its sample name (`x_count` of a histogram `x` …), labels and value. */
export interface Series {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: string;
}

/**
 * A scrape parsed as the Prometheus text format, with lookups by family and labels.
 *
 * parse-prometheus-text-format 1.1.1 folds the series of a labelled histogram into one sample
 * without labels, count or sum (yunyu/parse-prometheus-text-format#13, open). So the text is
 * parsed twice: as it is, for the families and their types, counters and gauges; and with every
 * histogram declared `untyped`, which the parser then reads line by line like any other series
 * (`x_bucket`, `x_sum`, `x_count`), labels and all: histograms and label values are read there.
 */
export class Metrics {
  readonly families: readonly MetricFamily[];
  /** Every series of the scrape, histograms' buckets, sums and counts included. */
  readonly series: readonly Series[];

  constructor(readonly text: string) {
    this.families = parsePrometheusTextFormat(text);
    this.series = parsePrometheusTextFormat(untypedHistograms(text)).flatMap((family) =>
      family.metrics.map((sample) => ({
        name: family.name,
        labels: sample.labels ?? {},
        value: sample.value ?? '',
      })),
    );
  }

  /** The family `name`; throws if the scrape lacks it (a metric is there from the start, series or not). */
  family(name: string): MetricFamily {
    const family = this.families.find((each) => each.name === name);
    if (family === undefined) throw new Error(`the scrape has no metric family ${name}`);
    return family;
  }

  /**
   * The value of counter or gauge `name` summed over the series whose labels
   * include `labels`; 0 when there is none (a series appears on its first use).
   */
  value(name: string, labels: LabelFilter = {}): number {
    const family = this.family(name);
    if (family.type !== 'COUNTER' && family.type !== 'GAUGE') throw new Error(`${name} is a ${family.type}`);
    return total(family.metrics.filter((sample) => includes(sample.labels ?? {}, labels)).map((s) => s.value));
  }

  /** The observations of histogram `name` (its `_count`) over the series whose labels include `labels`. */
  count(name: string, labels: LabelFilter = {}): number {
    return this.histogramPart(name, '_count', labels);
  }

  /** The sum of the observations of histogram `name` (its `_sum`) over the series whose labels include `labels`. */
  sum(name: string, labels: LabelFilter = {}): number {
    return this.histogramPart(name, '_sum', labels);
  }

  /** Every label value of every series, `le` included. */
  labelValues(): string[] {
    return this.series.flatMap((series) => Object.values(series.labels));
  }

  private histogramPart(name: string, suffix: '_count' | '_sum', labels: LabelFilter): number {
    const family = this.family(name);
    if (family.type !== 'HISTOGRAM') throw new Error(`${name} is a ${family.type}, not a histogram`);
    const parts = this.series.filter((series) => series.name === `${name}${suffix}`);
    return total(parts.filter((series) => includes(series.labels, labels)).map((series) => series.value));
  }
}

/** `text` with each `# TYPE x histogram` line saying `untyped` instead (see `Metrics`). */
function untypedHistograms(text: string): string {
  return text
    .split('\n')
    .map((line) =>
      line.startsWith('# TYPE ') && line.endsWith(' histogram')
        ? `${line.slice(0, -' histogram'.length)} untyped`
        : line,
    )
    .join('\n');
}

function includes(labels: Readonly<Record<string, string>>, wanted: LabelFilter): boolean {
  return Object.entries(wanted).every(([label, value]) => labels[label] === value);
}

function total(values: readonly (string | undefined)[]): number {
  return values.reduce((sum, value) => {
    const number = Number(value);
    if (value === undefined || Number.isNaN(number)) throw new Error(`not a sample value: ${value}`);
    return sum + number;
  }, 0);
}

export interface Scrape {
  readonly status: number;
  readonly contentType: string | undefined;
  /** The response body as text (a JSON error when the scrape was refused). */
  readonly text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  readonly json: any;
}

/** `GET /metrics` on `port`, with `authorization` when given. */
export async function scrape(port: number, authorization?: string): Promise<Scrape> {
  const response = await http(port, 'GET', '/metrics', {
    headers: authorization === undefined ? {} : { authorization },
  });
  const contentType = response.headers['content-type'];
  return {
    status: response.status,
    contentType: typeof contentType === 'string' ? contentType : undefined,
    text: response.text,
    json: response.json,
  };
}

/** `GET /metrics` on `port`, which must answer 200, parsed. */
export async function metricsOf(port: number, authorization?: string): Promise<Metrics> {
  const response = await scrape(port, authorization);
  if (response.status !== 200) throw new Error(`GET /metrics answered ${response.status}: ${response.text}`);
  return new Metrics(response.text);
}
