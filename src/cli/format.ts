import { stringify as toYaml } from 'yaml';
import { ChangeAction, Operation, type AuditEntry, type Change } from '../../generated/cfgd/v1/config_service.js';
import type { ListInstancesResponse } from '../../generated/cfgd/v1/fleet_service.js';

export type Output = 'text' | 'json' | 'yaml';

/** A value for people (`text`, pretty JSON) or for programs (`json` one line, `yaml`). */
export function render(value: unknown, output: Output): string {
  switch (output) {
    case 'yaml':
      return toYaml(value);
    case 'json':
      return `${JSON.stringify(value)}\n`;
    case 'text':
      return `${JSON.stringify(value, null, 2)}\n`;
  }
}

/** `PUT`, `SET_SCHEMA` …: an operation's name without its enum prefix. */
export function operationName(operation: Operation): string {
  return (Operation[operation] ?? String(operation)).replace(/^OPERATION_/, '');
}

/** `+key`, `~key`, `-key` for each change: what a version did, in a few characters per key. */
export function changeSummary(changes: readonly Change[]): string {
  const mark = (action: ChangeAction): string =>
    action === ChangeAction.CHANGE_ACTION_ADDED ? '+' : action === ChangeAction.CHANGE_ACTION_REMOVED ? '-' : '~';
  return changes.map((change) => `${mark(change.action)}${change.key}`).join(' ');
}

/** The history as a table: version, time, author, operation, changes. */
export function historyTable(entries: readonly AuditEntry[]): string {
  const rows = [
    ['VERSION', 'TIME', 'AUTHOR', 'OPERATION', 'CHANGES'],
    ...entries.map((entry) => [
      String(entry.version),
      entry.createTime?.toISOString() ?? '',
      entry.author,
      operationName(entry.operation) +
        (entry.operation === Operation.OPERATION_ROLLBACK ? ` to ${entry.rollbackToVersion}` : ''),
      changeSummary(entry.changes),
    ]),
  ];
  return table(rows);
}

/** Rows as left-aligned columns, the last one unpadded. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

/**
 * The difference between two sets of values, key by key (`+ key: value`,
 * `- key: value`, `~ key: old → new`), sorted by key; coloured (green, red,
 * yellow) when `colour`. Empty when they are equal.
 */
export function valuesDiff(
  before: Readonly<Record<string, unknown>>,
  after: Readonly<Record<string, unknown>>,
  colour: boolean,
): string {
  const paint = (code: number, text: string): string => (colour ? `\u001b[${code}m${text}\u001b[0m` : text);
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  const lines: string[] = [];
  for (const key of keys) {
    const had = Object.hasOwn(before, key);
    const has = Object.hasOwn(after, key);
    const old = JSON.stringify(before[key]);
    const now = JSON.stringify(after[key]);
    if (!had) lines.push(paint(32, `+ ${key}: ${now}`));
    else if (!has) lines.push(paint(31, `- ${key}: ${old}`));
    else if (old !== now) lines.push(paint(33, `~ ${key}: ${old} → ${now}`));
  }
  return lines.map((line) => `${line}\n`).join('');
}

/**
 * A config's convergence for people: one line of totals, then one row per
 * instance (what it runs, what it failed to apply and why, when it last
 * reported), those behind or failing marked.
 */
export function convergenceTable(response: ListInstancesResponse, now: Date): string {
  const { latestVersion, instances, converged } = response;
  const summary =
    `latest version ${latestVersion}: ${converged} of ${instances.length} ` +
    `${instances.length === 1 ? 'instance runs' : 'instances run'} it (instances silent for ${Math.round(response.instanceTtlMs / 1000)} s are forgotten)\n`;
  if (instances.length === 0) return summary;
  const ago = (time: Date | undefined): string =>
    time === undefined ? '' : `${Math.max(0, Math.round((now.getTime() - time.getTime()) / 1000))}s ago`;
  return (
    summary +
    table([
      ['INSTANCE', 'APPLIED', 'STATE', 'FAILED', 'LAST REPORT', 'ERROR'],
      ...instances.map((each) => [
        each.instanceId,
        String(each.appliedVersion),
        each.failedVersion > each.appliedVersion
          ? 'FAILING'
          : each.appliedVersion === latestVersion
            ? 'current'
            : 'behind',
        each.failedVersion === 0 ? '' : String(each.failedVersion),
        ago(each.reportTime),
        each.error,
      ]),
    ])
  );
}
