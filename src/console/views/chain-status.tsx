import { useEffect, useState } from 'preact/hooks';
import { configPath, isAbort, messageOf } from '../api.js';
import { useSession } from '../session.js';
import type { VerifyHistoryResponse } from '../types.js';

/** `CHAIN_PROBLEM_CONTENT` → `CONTENT`. */
function problemName(problem: string): string {
  return problem.replace(/^CHAIN_PROBLEM_/, '');
}

type Outcome =
  { readonly state: 'checking' } | { readonly state: 'intact' | 'broken' | 'failed'; readonly text: string };

function outcomeOf(check: VerifyHistoryResponse): Outcome {
  return check.intact
    ? { state: 'intact', text: 'History intact' }
    : {
        state: 'broken',
        text: `History broken at version ${check.first_bad_version} (${problemName(check.problem)})`,
      };
}

/**
 * The hash chain of the config's history (`GET …/history:verify`), checked again at each new
 * version (the last outcome stays shown meanwhile): "History intact", or the first version that
 * fails and how.
 */
export function ChainStatus({ user, config, version }: { user: string; config: string; version: number }) {
  const { api } = useSession();
  const [outcome, setOutcome] = useState<Outcome>({ state: 'checking' });
  useEffect(() => {
    const controller = new AbortController();
    api.call<VerifyHistoryResponse>(`${configPath(user, config)}/history:verify`, { signal: controller.signal }).then(
      (check) => setOutcome(outcomeOf(check)),
      (error: unknown) =>
        !isAbort(error) && setOutcome({ state: 'failed', text: `History not checked: ${messageOf(error)}` }),
    );
    return () => controller.abort();
  }, [api, user, config, version]);
  return (
    <output aria-label="History chain" class={`chain chain-${outcome.state}`}>
      {outcome.state === 'checking' ? 'Checking history…' : outcome.text}
    </output>
  );
}
