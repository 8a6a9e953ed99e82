import type { ServingSource } from '../../app/health.js';
import { sendJson, type Route } from './http.js';
import { parseTemplate } from './path-template.js';

/**
 * The probes, for load balancers and Kubernetes; open, and they say nothing
 * but the status.
 *
 *   GET /healthz   liveness: 200 while this process serves HTTP. It does not
 *                  follow the store, so that an outage of the database does
 *                  not get every node restarted.
 *   GET /readyz    readiness: 200 SERVING while the store answers, else 503
 *                  NOT_SERVING (the database unreachable, shutdown begun): the
 *                  rule of the gRPC health service.
 */
export function probeRoutes(source: ServingSource): Route[] {
  return [
    {
      method: 'GET',
      template: parseTemplate('/healthz'),
      name: 'GET /healthz',
      streaming: false,
      open: true,
      async handle({ res }) {
        sendJson(res, 200, { status: 'SERVING' }, NO_STORE);
      },
    },
    {
      method: 'GET',
      template: parseTemplate('/readyz'),
      name: 'GET /readyz',
      streaming: false,
      open: true,
      async handle({ res }) {
        const status = source.status;
        sendJson(res, status === 'SERVING' ? 200 : 503, { status }, NO_STORE);
      },
    },
  ];
}

/** A scrape of the metrics: the text and its content type. */
export interface MetricsScrape {
  readonly contentType: string;
  readonly text: string;
}

/**
 * `GET /metrics` in the Prometheus text format. `open`: without a credential;
 * otherwise any credential authentication accepts (one without grants will
 * do), or none with authentication off.
 */
export function metricsRoute(scrape: () => Promise<MetricsScrape>, open: boolean): Route {
  return {
    method: 'GET',
    template: parseTemplate('/metrics'),
    name: 'GET /metrics',
    streaming: false,
    open,
    async handle({ res }) {
      const { contentType, text } = await scrape();
      res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(text), ...NO_STORE });
      res.end(text);
    },
  };
}

/** `GET /v1/openapi.json`: the OpenAPI document of the `/v1` routes, open (it describes the API, nothing in it). */
export function openApiRoute(document: unknown): Route {
  const text = JSON.stringify(document);
  return {
    method: 'GET',
    template: parseTemplate('/v1/openapi.json'),
    name: 'GET /v1/openapi.json',
    streaming: false,
    open: true,
    async handle({ res }) {
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    },
  };
}

const NO_STORE = { 'cache-control': 'no-store' };
