import { useRef, useState } from 'preact/hooks';
import { type ApiError, messageOf } from '../api.js';
import { useDebounced, useLoad } from '../hooks.js';
import { configHref } from '../router.js';
import { useSession } from '../session.js';
import type { ListConfigsResponse } from '../types.js';
import { PageHeading } from './heading.js';
import { Time } from './time.js';

const PAGE_SIZE = 50;

/**
 * `#/users/{u}`: the user's configs that the principal may read, 50 a page, filtered by a name
 * prefix; Next and Previous page follow the server's page tokens.
 */
export function ConfigsPage({ user }: { readonly user: string }) {
  const { api } = useSession();
  const [filter, setFilter] = useState('');
  const prefix = useDebounced(filter.trim(), 300);
  // The page tokens of the pages seen, the current page's last; a new filter starts over.
  const [paging, setPaging] = useState({ prefix: '', tokens: [''] });
  const tokens = paging.prefix === prefix ? paging.tokens : [''];
  const pageToken = tokens[tokens.length - 1] ?? '';
  const loaded = useLoad(
    (signal) =>
      api.call<ListConfigsResponse>(`/v1/users/${encodeURIComponent(user)}/configs`, {
        query: { page_size: PAGE_SIZE, name_prefix: prefix || undefined, page_token: pageToken || undefined },
        signal,
      }),
    [api, user, prefix, pageToken],
  );
  // While the next answer loads, the last one stays on screen.
  const last = useRef<ListConfigsResponse | undefined>(undefined);
  if (loaded.state === 'done') last.current = loaded.value;
  const page = loaded.state === 'failed' ? undefined : last.current;
  const busy = loaded.state === 'loading';

  return (
    <>
      <PageHeading title={`Configs of ${user}`} />
      <div class="toolbar">
        <label for="name-filter">Filter by name</label>
        <input
          id="name-filter"
          type="search"
          autoComplete="off"
          spellcheck={false}
          value={filter}
          onInput={(event) => setFilter(event.currentTarget.value)}
        />
        <span role="status" class="muted">
          {busy ? 'Loading…' : ''}
        </span>
      </div>
      {loaded.state === 'failed' && (
        <p role="alert" class="error">
          {(loaded.error as ApiError).status === 403
            ? `You may not read the configs of ${user}: ${messageOf(loaded.error)}`
            : messageOf(loaded.error)}
        </p>
      )}
      {page !== undefined && (
        <>
          <div class="table-scroll">
            <table aria-label="Configs">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Version</th>
                  <th scope="col">Updated</th>
                  <th scope="col">Author</th>
                </tr>
              </thead>
              <tbody>
                {page.configs.map((config) => (
                  <tr key={config.config_name}>
                    <td class="wrap">
                      <a href={configHref(user, config.config_name)}>{config.config_name}</a>
                      {config.deleted && <span class="tag"> deleted</span>}
                    </td>
                    <td class="num">{config.version}</td>
                    <td>
                      <Time iso={config.update_time} />
                    </td>
                    <td class="wrap">{config.author ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {page.configs.length === 0 && (
            <p>{prefix === '' ? 'No configs.' : `No config names start with ${prefix}.`}</p>
          )}
          <div class="pager">
            {tokens.length > 1 && (
              <button
                type="button"
                aria-disabled={busy}
                onClick={() => !busy && setPaging({ prefix, tokens: tokens.slice(0, -1) })}
              >
                Previous page
              </button>
            )}
            {page.next_page_token !== '' && (
              <button
                type="button"
                aria-disabled={busy}
                onClick={() => !busy && setPaging({ prefix, tokens: [...tokens, page.next_page_token] })}
              >
                Next page
              </button>
            )}
          </div>
        </>
      )}
    </>
  );
}
