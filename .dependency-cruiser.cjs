/**
 * cfgd's layers, checked by `npm run lint` (dependency-cruiser):
 *   domain            imports nothing of ours
 *   store interface   (src/store/*.ts) only the domain
 *   backends          (src/store/<name>/) the domain and the store interface, never each other
 *   schema            (src/schema/) the domain: JSON Schemas compiled and checked
 *   render            (src/render/) the domain: config values written as files (JSON, YAML,
 *                     dotenv, Java properties)
 *   app               the domain, the store interface and the schema module
 *   transports        the app, the domain, the render module and generated code
 *   settings, log     the domain (settings) and nothing else of ours
 *   tools             nothing of ours (build steps of `npm run generate`)
 *   metrics           (src/metrics/) Prometheus metrics (prom-client): the app's status types,
 *                     the store interface (its events, a timing decorator) and the transports'
 *                     call observer, which it implements; nothing imports it but cluster and main
 *   cluster           (src/cluster/) the processes of `--workers N`: the primary and its workers;
 *                     the app's status types, settings, the store interface, the embedded
 *                     store's writer link and the metrics (a scrape sums every process); never a
 *                     transport (main hands it the node to start)
 *   client            (src/client/) the client library the CLI and the agent use: generated code
 *                     only, so that it talks to the server as any other client does
 *   agent             (src/agent/) `cfgd agent`, the sidecar that writes configs to files:
 *                     the client library, generated types, the render module and the domain
 *                     types render speaks (the same file formats as the server's RenderConfig)
 *   cli               (src/cli/) the cfgd command's client commands: the client library,
 *                     generated types and the agent (src/cli.ts, beside main.ts, also starts
 *                     the server)
 *   console           (src/console/) the web console, a browser bundle: nothing of cfgd (it
 *                     speaks the REST API's JSON over fetch, as any browser client does)
 *   main              everything: the one composition root
 * Tests and the benchmark may import anything; generated code imports only itself.
 */
const layer = (name, path, allowed) => ({
  name: `${name}-imports-only-its-layers`,
  comment: `${name} may import only: ${allowed.join(', ') || 'nothing of cfgd'}`,
  severity: 'error',
  from: { path },
  to: {
    path: '^(src|generated)/',
    pathNot: [path, ...allowed.map((p) => LAYERS[p])],
  },
});

const LAYERS = {
  domain: '^src/domain/',
  'store-interface': '^src/store/[^/]+\\.ts$',
  embedded: '^src/store/embedded/',
  rethinkdb: '^src/store/rethinkdb/',
  schema: '^src/schema/',
  render: '^src/render/',
  app: '^src/app/',
  transport: '^src/transport/',
  settings: '^src/settings/',
  log: '^src/log/',
  tools: '^src/tools/',
  cluster: '^src/cluster/',
  metrics: '^src/metrics/',
  client: '^src/client/',
  cli: '^src/cli/',
  agent: '^src/agent/',
  console: '^src/console/',
  generated: '^generated/',
};

module.exports = {
  forbidden: [
    layer('domain', LAYERS.domain, []),
    layer('store-interface', LAYERS['store-interface'], ['domain']),
    layer('embedded', LAYERS.embedded, ['domain', 'store-interface']),
    layer('rethinkdb', LAYERS.rethinkdb, ['domain', 'store-interface']),
    layer('schema', LAYERS.schema, ['domain']),
    layer('render', LAYERS.render, ['domain']),
    layer('app', LAYERS.app, ['domain', 'store-interface', 'schema']),
    layer('transport', LAYERS.transport, ['app', 'domain', 'render', 'generated']),
    layer('settings', LAYERS.settings, ['domain', 'log']),
    layer('log', LAYERS.log, []),
    layer('tools', LAYERS.tools, []),
    layer('metrics', LAYERS.metrics, ['app', 'domain', 'store-interface', 'transport']),
    layer('cluster', LAYERS.cluster, ['app', 'domain', 'settings', 'log', 'store-interface', 'embedded', 'metrics']),
    layer('client', LAYERS.client, ['generated']),
    layer('console', LAYERS.console, []),
    layer('agent', LAYERS.agent, ['client', 'render', 'domain', 'generated']),
    layer('cli', LAYERS.cli, ['client', 'agent', 'generated']),
    layer('generated', LAYERS.generated, []),
    {
      name: 'no-circular',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
