/**
 * The deployment files in docs/ agree with the code: every flag and CFGD_*
 * variable they give cfgd goes through the real settings loader, and the
 * probes, ports, scrape targets and shutdown timing are checked against the
 * settings that loader returns. Renaming a flag, moving a listener or raising
 * the shutdown grace without updating docs/deploy fails here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  SETTINGS,
  SettingsError,
  hostOf,
  isLoopback,
  loadSettings,
  type CfgdSettings,
} from '../../src/settings/settings.js';
import { WORKER_CUT_MS } from '../../src/cluster/primary.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** Stands for any secret: long enough for an admin token, URL-safe for a password in CFGD_STORE. */
const SECRET_PLACEHOLDER = 'placeholder-secret-0123456789abcdef0123456789';
/** What starts cfgd: `node …/dist/src/main.js`, the built entry point. */
const ENTRY_POINT = /(^|\/)dist\/src\/main\.js$/;
/** Services the gRPC health service answers for. */
const HEALTH_SERVICES = ['', 'cfgd.v1.ConfigService', 'cfgd.v1.AuthService', 'cfgd.v1.StatusService'];

const SETTING_ENVS = new Set<string>(Object.values(SETTINGS).map((setting) => setting.env));
const SETTING_FLAGS = new Set<string>(Object.keys(SETTINGS));

const portOf = (address: string): number => Number(address.slice(address.lastIndexOf(':') + 1));

/** Every `CFGD_…` name in a text, comments included. */
function cfgdNames(text: string): string[] {
  return [...new Set(text.match(/\bCFGD_[A-Z0-9_]+/g) ?? [])];
}

// --- Kubernetes ---------------------------------------------------------------------------------

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
}
interface HttpGetAction {
  path: string;
  port: number | string;
  scheme?: string;
}
interface Probe {
  httpGet?: HttpGetAction;
  grpc?: { port: number; service?: string };
}
interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodTemplate {
  metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    containers: Container[];
    terminationGracePeriodSeconds?: number;
    enableServiceLinks?: boolean;
    volumes?: { name: string; secret?: { secretName: string } }[];
  };
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: any;
  stringData?: Record<string, string>;
  data?: Record<string, string>;
}
interface Workload extends Manifest {
  kind: 'Deployment' | 'StatefulSet';
  spec: {
    replicas?: number;
    serviceName?: string;
    selector: { matchLabels: Record<string, string> };
    template: PodTemplate;
    volumeClaimTemplates?: { metadata: { name: string } }[];
  };
}
interface ServicePort {
  name: string;
  port: number;
  targetPort: number | string;
}
interface Service extends Manifest {
  kind: 'Service';
  spec: { selector: Record<string, string>; ports: ServicePort[] };
}

const kubernetesText = read('docs/deploy/kubernetes.yaml');
const kubernetesDocuments = parseAllDocuments(kubernetesText);
const manifests = kubernetesDocuments.map((document) => document.toJS() as Manifest);
const workloads = manifests.filter(
  (manifest): manifest is Workload => manifest.kind === 'Deployment' || manifest.kind === 'StatefulSet',
);
const services = manifests.filter((manifest): manifest is Service => manifest.kind === 'Service');
const secrets = manifests.filter((manifest) => manifest.kind === 'Secret');

const isCfgd = (container: Container): boolean =>
  [...(container.command ?? []), ...(container.args ?? [])].some((part) => ENTRY_POINT.test(part));

/** A secret key as the test sees it: it must exist in a Secret of the file; its value is a placeholder. */
function secretValue(ref: { name: string; key: string }): string {
  const secret = secrets.find((candidate) => candidate.metadata.name === ref.name);
  expect(secret, `Secret ${ref.name}`).toBeDefined();
  expect({ ...secret?.data, ...secret?.stringData }, `Secret ${ref.name}`).toHaveProperty([ref.key]);
  return SECRET_PLACEHOLDER;
}

/** Kubernetes' `$(VAR)` expansion in command, args and env values (`$$` escapes a `$`). */
function expand(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (match, name: string | undefined) =>
    match === '$$' ? '$' : name !== undefined && vars.has(name) ? vars.get(name)! : match,
  );
}

/** How the kubelet starts a cfgd container: its flags and environment, secrets replaced by placeholders. */
function invocation(container: Container): { argv: string[]; env: Record<string, string> } {
  const vars = new Map<string, string>();
  for (const variable of container.env ?? []) {
    const ref = variable.valueFrom?.secretKeyRef;
    vars.set(variable.name, ref === undefined ? expand(variable.value ?? '', vars) : secretValue(ref));
  }
  const line = [...(container.command ?? []), ...(container.args ?? [])].map((part) => expand(part, vars));
  const entry = line.findIndex((part) => ENTRY_POINT.test(part));
  return { argv: line.slice(entry + 1), env: Object.fromEntries(vars) };
}

/** The container port a probe or Service names, by name or number. */
function containerPort(container: Container, port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((candidate) => candidate.name === port)?.containerPort;
}

function preStopSeconds(container: Container): number {
  const preStop = container.lifecycle?.preStop;
  if (preStop?.sleep !== undefined) return preStop.sleep.seconds;
  const command = preStop?.exec?.command ?? [];
  expect(command[0], `${container.name}: preStop sleeps`).toBe('sleep');
  return Number(command[1]);
}

const matches = (selector: Record<string, string>, labels: Record<string, string> | undefined): boolean =>
  Object.entries(selector).every(([key, value]) => labels?.[key] === value);

function cfgdContainers(): { workload: Workload; container: Container; settings: CfgdSettings }[] {
  return workloads.flatMap((workload) =>
    workload.spec.template.spec.containers.filter(isCfgd).map((container) => {
      const { argv, env } = invocation(container);
      return { workload, container, settings: loadSettings(argv, env) };
    }),
  );
}

describe('docs/deploy/kubernetes.yaml', () => {
  it('parses, and every document is a named Kubernetes object in the namespace', () => {
    expect(kubernetesDocuments.length).toBeGreaterThan(0);
    for (const document of kubernetesDocuments) {
      expect(document.errors).toEqual([]);
      expect(document.warnings).toEqual([]);
    }
    const namespace = manifests.find((manifest) => manifest.kind === 'Namespace')?.metadata.name;
    for (const manifest of manifests) {
      expect(typeof manifest.apiVersion).toBe('string');
      expect(typeof manifest.kind).toBe('string');
      expect(typeof manifest.metadata.name).toBe('string');
      if (manifest.kind !== 'Namespace' && namespace !== undefined) expect(manifest.metadata.namespace).toBe(namespace);
    }
  });

  it('names only CFGD_* variables that are settings', () => {
    expect(cfgdNames(kubernetesText).filter((name) => !SETTING_ENVS.has(name))).toEqual([]);
    for (const workload of workloads) {
      for (const container of workload.spec.template.spec.containers) {
        for (const variable of container.env ?? []) {
          if (variable.name.startsWith('CFGD_')) expect(SETTING_ENVS, variable.name).toContain(variable.name);
        }
      }
    }
  });

  it("gives every cfgd container flags and variables that cfgd's settings loader accepts", () => {
    const containers = cfgdContainers();
    expect(containers.length).toBeGreaterThan(0);
    for (const { workload, container, settings } of containers) {
      // Reachable by other pods (which also makes the loader insist on TLS or --allow-plaintext).
      expect(isLoopback(hostOf(settings.grpcAddress)), `${workload.metadata.name}: gRPC address`).toBe(false);
      expect(isLoopback(hostOf(settings.httpAddress)), `${workload.metadata.name}: REST address`).toBe(false);
      expect(workload.spec.template.spec.enableServiceLinks, 'no CFGD_SERVICE_HOST … from Services').toBe(false);
      expect(container.name).toBe('cfgd');
    }
  });

  it('declares the ports the settings listen on, named grpc and http', () => {
    for (const { container, settings } of cfgdContainers()) {
      expect(containerPort(container, 'grpc')).toBe(portOf(settings.grpcAddress));
      expect(containerPort(container, 'http')).toBe(portOf(settings.httpAddress));
    }
  });

  it('probes /healthz for liveness and /readyz (or the gRPC health service) for readiness, on the listeners', () => {
    for (const { workload, container, settings } of cfgdContainers()) {
      const checks: [string, Probe | undefined, string][] = [
        ['startup', container.startupProbe, '/healthz'],
        ['liveness', container.livenessProbe, '/healthz'],
        ['readiness', container.readinessProbe, '/readyz'],
      ];
      expect(container.livenessProbe, `${workload.metadata.name}: liveness`).toBeDefined();
      expect(container.readinessProbe, `${workload.metadata.name}: readiness`).toBeDefined();
      for (const [kind, probe, path] of checks) {
        if (probe === undefined) continue;
        const what = `${workload.metadata.name}: ${kind} probe`;
        if (probe.grpc !== undefined) {
          // The kubelet's gRPC probe speaks plaintext, takes a number, and sees the store like /readyz.
          expect(kind, what).not.toBe('liveness');
          expect(probe.grpc.port, what).toBe(portOf(settings.grpcAddress));
          expect(settings.tls, `${what}: the kubelet's gRPC probe has no TLS`).toBeUndefined();
          expect(HEALTH_SERVICES, what).toContain(probe.grpc.service ?? '');
          continue;
        }
        expect(probe.httpGet, what).toBeDefined();
        expect(probe.httpGet?.path, what).toBe(path);
        expect(containerPort(container, probe.httpGet?.port ?? ''), what).toBe(portOf(settings.httpAddress));
        expect(probe.httpGet?.scheme ?? 'HTTP', what).toBe(settings.tls === undefined ? 'HTTP' : 'HTTPS');
      }
    }
  });

  it('lets a pod drain: terminationGracePeriodSeconds covers preStop and the shutdown grace', () => {
    for (const { workload, container, settings } of cfgdContainers()) {
      const preStopMs = preStopSeconds(container) * 1000;
      expect(preStopMs, `${workload.metadata.name}: preStop sleep`).toBeGreaterThan(0);
      const drainMs = preStopMs + settings.shutdownGraceMs + (settings.workers > 1 ? WORKER_CUT_MS : 0);
      const terminationMs = (workload.spec.template.spec.terminationGracePeriodSeconds ?? 30) * 1000;
      expect(terminationMs, `${workload.metadata.name}: terminationGracePeriodSeconds`).toBeGreaterThanOrEqual(drainMs);
    }
  });

  it('mounts the TLS files from a Secret, and an embedded store on the one volume of a one-pod StatefulSet', () => {
    for (const { workload, container, settings } of cfgdContainers()) {
      const mountOf = (path: string) =>
        container.volumeMounts?.find((mount) => path.startsWith(`${mount.mountPath.replace(/\/$/, '')}/`));
      if (settings.tls !== undefined) {
        for (const file of [settings.tls.certFile, settings.tls.keyFile]) {
          const mount = mountOf(file);
          const volume = workload.spec.template.spec.volumes?.find((candidate) => candidate.name === mount?.name);
          expect(volume?.secret, `${workload.metadata.name}: ${file} comes from a Secret`).toBeDefined();
        }
      }
      const store = settings.store;
      if (store.kind === 'embedded') {
        expect(workload.kind, `${workload.metadata.name}: an embedded store`).toBe('StatefulSet');
        expect(workload.spec.replicas ?? 1, 'one server owns a store directory').toBe(1);
        const mount = container.volumeMounts?.find((candidate) => candidate.mountPath === store.path);
        const claims = (workload.spec.volumeClaimTemplates ?? []).map((claim) => claim.metadata.name);
        expect(claims, `${workload.metadata.name}: the store is on a PersistentVolume`).toContain(mount?.name);
      }
    }
  });

  it('selects each workload by labels its pods carry, and annotates pods for scraping /metrics', () => {
    for (const { workload, settings } of cfgdContainers()) {
      const template = workload.spec.template;
      expect(matches(workload.spec.selector.matchLabels, template.metadata.labels)).toBe(true);
      const annotations = template.metadata.annotations ?? {};
      if (annotations['prometheus.io/scrape'] === 'true') {
        expect(Number(annotations['prometheus.io/port'])).toBe(portOf(settings.httpAddress));
        expect(annotations['prometheus.io/path'] ?? '/metrics').toBe('/metrics');
        expect(annotations['prometheus.io/scheme'] ?? 'http').toBe(settings.tls === undefined ? 'http' : 'https');
      }
      if (workload.kind === 'StatefulSet') {
        expect(services.map((service) => service.metadata.name)).toContain(workload.spec.serviceName);
      }
    }
  });

  it('has Services that target the named ports of the pods they select', () => {
    expect(services.length).toBeGreaterThan(0);
    for (const service of services) {
      const selected = cfgdContainers().filter(({ workload }) =>
        matches(service.spec.selector, workload.spec.template.metadata.labels),
      );
      expect(selected.length, `Service ${service.metadata.name} selects cfgd pods`).toBeGreaterThan(0);
      for (const port of service.spec.ports) {
        expect(typeof port.targetPort, `${service.metadata.name}/${port.name}: a named port`).toBe('string');
        expect(port.targetPort).toBe(port.name);
        for (const { container, settings } of selected) {
          const listener = port.name === 'grpc' ? settings.grpcAddress : settings.httpAddress;
          expect(containerPort(container, port.targetPort)).toBe(portOf(listener));
        }
      }
    }
  });

  it('scrapes /metrics with the token from the Secret (ServiceMonitor)', () => {
    const monitors = manifests.filter((manifest) => manifest.kind === 'ServiceMonitor');
    for (const monitor of monitors) {
      const selected = services.filter((service) =>
        matches(monitor.spec.selector.matchLabels, service.metadata.labels),
      );
      expect(selected.length).toBeGreaterThan(0);
      for (const endpoint of monitor.spec.endpoints as any[]) {
        expect(endpoint.path).toBe('/metrics');
        secretValue(endpoint.authorization.credentials);
        for (const service of selected) {
          const port = service.spec.ports.find((candidate) => candidate.name === endpoint.port);
          expect(port, `${service.metadata.name} has port ${endpoint.port}`).toBeDefined();
          for (const { container, settings } of cfgdContainers().filter(({ workload }) =>
            matches(service.spec.selector, workload.spec.template.metadata.labels),
          )) {
            expect(containerPort(container, port?.targetPort ?? '')).toBe(portOf(settings.httpAddress));
            expect(endpoint.scheme ?? 'http').toBe(settings.tls === undefined ? 'http' : 'https');
            expect(settings.metrics).not.toBe('off');
          }
        }
      }
    }
  });

  it("keeps the Secret's admin token a placeholder cfgd refuses, so an unedited apply fails loudly", () => {
    for (const secret of secrets) {
      const adminToken = secret.stringData?.['admin-token'];
      if (adminToken !== undefined) {
        expect(() => loadSettings([], { CFGD_ADMIN_TOKEN: adminToken })).toThrow(SettingsError);
      }
    }
  });
});

// --- Prometheus ---------------------------------------------------------------------------------

describe('docs/deploy/prometheus.yaml', () => {
  const documents = parseAllDocuments(read('docs/deploy/prometheus.yaml'));
  const config = documents[0]?.toJS() as { scrape_configs: any[] };

  it('parses, and every job sends a token from a file to /metrics', () => {
    expect(documents).toHaveLength(1);
    expect(documents[0]?.errors).toEqual([]);
    expect(config.scrape_configs.length).toBeGreaterThan(0);
    for (const job of config.scrape_configs) {
      expect(job.metrics_path ?? '/metrics').toBe('/metrics');
      expect(job.authorization?.type ?? 'Bearer').toBe('Bearer');
      expect(job.authorization?.credentials_file).toMatch(/^\//);
    }
  });

  it("scrapes the systemd unit's REST port with its scheme, and the pods' port named http", () => {
    const server = unitSettings();
    for (const job of config.scrape_configs) {
      for (const group of job.static_configs ?? []) {
        for (const target of group.targets as string[]) expect(portOf(target)).toBe(portOf(server.httpAddress));
        expect(job.scheme ?? 'http').toBe(server.tls === undefined ? 'http' : 'https');
      }
      const portName = (job.relabel_configs ?? []).find(
        (rule: any) =>
          rule.action === 'keep' && rule.source_labels?.[0] === '__meta_kubernetes_pod_container_port_name',
      );
      if (portName !== undefined) {
        for (const { container, settings } of cfgdContainers()) {
          const named = container.ports?.find((port) => new RegExp(`^(?:${portName.regex})$`).test(port.name ?? ''));
          expect(named?.containerPort).toBe(portOf(settings.httpAddress));
        }
      }
    }
  });
});

// --- systemd ------------------------------------------------------------------------------------

type Unit = Map<string, [string, string][]>;

/** A systemd unit file: `[Section]`s of `Key=Value` lines; `#`/`;` comments; a trailing `\` continues a line. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: [string, string][] | undefined;
  let pending = '';
  for (const raw of text.split('\n')) {
    const text = raw.trim();
    // A comment inside a continued line is skipped, the continuation goes on.
    if (text.startsWith('#') || text.startsWith(';')) continue;
    const line = pending + text;
    pending = '';
    if (line === '') continue;
    if (line.endsWith('\\')) {
      pending = `${line.slice(0, -1).trim()} `;
      continue;
    }
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header !== null) {
      section = [];
      unit.set(header[1]!, section);
      continue;
    }
    const equals = line.indexOf('=');
    if (equals <= 0 || section === undefined) throw new Error(`not a unit file line: ${line}`);
    section.push([line.slice(0, equals).trim(), line.slice(equals + 1).trim()]);
  }
  return unit;
}

/** Every value of `key` in `section`, in order. */
const values = (unit: Unit, section: string, key: string): string[] =>
  (unit.get(section) ?? []).filter(([name]) => name === key).map(([, value]) => value);
const value = (unit: Unit, section: string, key: string): string | undefined => values(unit, section, key).at(-1);

/** systemd's word splitting: whitespace-separated, "double" or 'single' quotes group. */
function words(text: string): string[] {
  return [...text.matchAll(/"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g)].map(
    (match) => match[1]?.replace(/\\(.)/g, '$1') ?? match[2] ?? match[3] ?? '',
  );
}

const unitText = read('docs/deploy/cfgd.service');
const unit = parseUnit(unitText);

/** What the unit starts cfgd with: ExecStart's flags, Environment=, and placeholders for EnvironmentFile=. */
function unitInvocation(): { argv: string[]; env: Record<string, string> } {
  const env: Record<string, string> = {};
  // The variables the unit's comments say EnvironmentFile= holds (secrets, so placeholders here).
  if (values(unit, 'Service', 'EnvironmentFile').length > 0) {
    for (const match of unitText.matchAll(/^\s*[#;]\s*(CFGD_[A-Z0-9_]+)=/gm)) env[match[1]!] = SECRET_PLACEHOLDER;
  }
  for (const assignments of values(unit, 'Service', 'Environment')) {
    for (const assignment of words(assignments)) {
      const equals = assignment.indexOf('=');
      env[assignment.slice(0, equals)] = assignment.slice(equals + 1);
    }
  }
  const command = words((value(unit, 'Service', 'ExecStart') ?? '').replace(/^[-@:+!]+/, ''));
  const entry = command.findIndex((part) => ENTRY_POINT.test(part));
  expect(entry, 'ExecStart runs dist/src/main.js').toBeGreaterThan(0);
  expect(command[0], 'ExecStart: node by its absolute path').toMatch(/^\/.*\/node$/);
  return { argv: command.slice(entry + 1), env };
}

function unitSettings(): CfgdSettings {
  const { argv, env } = unitInvocation();
  return loadSettings(argv, env);
}

describe('docs/deploy/cfgd.service', () => {
  it('is a unit file of [Unit], [Service] and [Install]', () => {
    expect([...unit.keys()]).toEqual(['Unit', 'Service', 'Install']);
    expect(value(unit, 'Install', 'WantedBy')).toBe('multi-user.target');
  });

  it("starts cfgd with flags and variables that cfgd's settings loader accepts, all of them settings", () => {
    const { env } = unitInvocation();
    expect(Object.keys(env)).toContain('CFGD_ADMIN_TOKEN');
    for (const name of Object.keys(env).filter((name) => name.startsWith('CFGD_')))
      expect(SETTING_ENVS).toContain(name);
    expect(cfgdNames(unitText).filter((name) => !SETTING_ENVS.has(name))).toEqual([]);
    const settings = unitSettings();
    expect(settings.store.kind).toBe('embedded');
  });

  it('keeps the store in its StateDirectory, writable under ProtectSystem=strict', () => {
    const settings = unitSettings();
    const stateDirectory = `/var/lib/${value(unit, 'Service', 'StateDirectory')}`;
    expect(settings.store).toMatchObject({ kind: 'embedded', path: stateDirectory });
    expect(values(unit, 'Service', 'ReadWritePaths').flatMap(words)).toContain(stateDirectory);
  });

  it('stops with SIGTERM and gives the drain more time than the shutdown grace', () => {
    const settings = unitSettings();
    expect(value(unit, 'Service', 'KillSignal')).toBe('SIGTERM');
    expect(['mixed', 'control-group']).toContain(value(unit, 'Service', 'KillMode') ?? 'control-group');
    const timeout = /^(\d+)s?$/.exec(value(unit, 'Service', 'TimeoutStopSec') ?? '');
    expect(timeout, 'TimeoutStopSec in seconds').not.toBeNull();
    // Workers default to one per core: the primary may take the grace plus its cut-off.
    expect(Number(timeout![1]) * 1000).toBeGreaterThan(settings.shutdownGraceMs + WORKER_CUT_MS);
    expect(value(unit, 'Service', 'Restart')).toBe('on-failure');
  });

  it('runs as a dedicated user, hardened, without breaking the JIT', () => {
    expect(value(unit, 'Service', 'User')).toMatch(/^(?!root$)\w+/);
    expect(value(unit, 'Service', 'NoNewPrivileges')).toBe('yes');
    expect(value(unit, 'Service', 'ProtectSystem')).toBe('strict');
    expect(value(unit, 'Service', 'MemoryDenyWriteExecute') ?? 'no').toBe('no');
  });
});

// --- runbook ------------------------------------------------------------------------------------

describe('docs/runbook.md', () => {
  const runbook = read('docs/runbook.md');

  it('mentions only flags and CFGD_* variables that are settings', () => {
    const flags = [...runbook.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((match) => match[1]!);
    expect(flags.length).toBeGreaterThan(0);
    expect([...new Set(flags)].filter((flag) => !SETTING_FLAGS.has(flag) && flag !== 'help')).toEqual([]);
    expect(cfgdNames(runbook).filter((name) => !SETTING_ENVS.has(name))).toEqual([]);
  });

  it('gives the defaults the settings loader uses', () => {
    const rows = [...runbook.matchAll(/^\|\s*`--([a-z0-9-]+)`\s*\|\s*`([^`]*)`\s*\|/gm)];
    expect(rows.length).toBeGreaterThan(0);
    const defaults = loadSettings([], {});
    for (const [, flag, documented] of rows) {
      expect(loadSettings([`--${flag}=${documented}`], {}), `--${flag} defaults to ${documented}`).toEqual(defaults);
    }
  });
});
