import { useEffect, useState } from 'preact/hooks';
import { configPath, isAbort, messageOf } from '../api.js';
import { versionOf } from '../format.js';
import { useInterval } from '../hooks.js';
import { useSession } from '../session.js';
import type { InstanceReport, ListInstancesResponse } from '../types.js';
import { Time } from './time.js';

/** How often the fleet's reports are read again. */
const REFRESH_MS = 5000;

/** An instance's state, as `cfgd status` shows it. */
function stateOf(instance: InstanceReport, latest: number): 'current' | 'behind' | 'FAILING' {
  const applied = versionOf(instance.applied_version);
  if (versionOf(instance.failed_version) > applied) return 'FAILING';
  return applied === latest ? 'current' : 'behind';
}

/**
 * Fleet convergence (`GET …/instances`): which instances run which version, read every 5 s and
 * at each new version.
 */
export function InstancesSection({ user, config, version }: { user: string; config: string; version: number }) {
  const { api } = useSession();
  const [fleet, setFleet] = useState<ListInstancesResponse>();
  const [error, setError] = useState<string>();
  const [tick, setTick] = useState(0);
  useInterval(() => setTick((n) => n + 1), REFRESH_MS);

  useEffect(() => {
    const controller = new AbortController();
    api
      .call<ListInstancesResponse>(`${configPath(user, config)}/instances`, { signal: controller.signal })
      .then((response) => {
        setFleet(response);
        setError(undefined);
      })
      .catch((failure: unknown) => !isAbort(failure) && setError(messageOf(failure)));
    return () => controller.abort();
  }, [api, user, config, version, tick]);

  const latest = versionOf(fleet?.latest_version);
  const instances = fleet?.instances ?? [];
  return (
    <section aria-labelledby="instances-heading">
      <h2 id="instances-heading">Instances</h2>
      {error !== undefined && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {fleet !== undefined && (
        <>
          <p class="summary">
            {fleet.converged} of {instances.length} instances run version {latest}
          </p>
          <div class="table-scroll">
            <table aria-label="Instances">
              <thead>
                <tr>
                  <th scope="col">Instance</th>
                  <th scope="col">Applied</th>
                  <th scope="col">State</th>
                  <th scope="col">Failed</th>
                  <th scope="col">Last report</th>
                  <th scope="col">Error</th>
                </tr>
              </thead>
              <tbody>
                {instances.map((instance) => {
                  const state = stateOf(instance, latest);
                  return (
                    <tr key={instance.instance_id} class={`state-${state.toLowerCase()}`}>
                      <td class="wrap">{instance.instance_id}</td>
                      <td class="num">{instance.applied_version}</td>
                      <td>{state}</td>
                      <td class="num">{versionOf(instance.failed_version) === 0 ? '' : instance.failed_version}</td>
                      <td>
                        <Time iso={instance.report_time} />
                      </td>
                      <td class="wrap">{instance.error}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
          {instances.length === 0 && (
            <p class="muted">No instance reports on this config: agents report the versions they apply.</p>
          )}
        </>
      )}
    </section>
  );
}
