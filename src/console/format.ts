// How the console writes versions, operations, times and changes for people.
import type { Change } from './types.js';

const pad = (n: number): string => String(n).padStart(2, '0');

/** A timestamp as local `YYYY-MM-DD HH:MM:SS`; '' for none, the text itself if it is not a time. */
export function localTime(iso: string | undefined): string {
  if (iso === undefined || iso === '') return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** `OPERATION_SET_SCHEMA` → `SET_SCHEMA`. */
export function operationName(operation: string): string {
  return operation.replace(/^OPERATION_/, '');
}

/** A change's sign: `+` added, `~` updated, `-` removed. */
export function changeSign(change: Change): '+' | '~' | '-' {
  if (change.action === 'CHANGE_ACTION_ADDED') return '+';
  if (change.action === 'CHANGE_ACTION_REMOVED') return '-';
  return '~';
}

/** A change as `+key`, `~key` or `-key`. */
export function changeLabel(change: Change): string {
  return `${changeSign(change)}${change.key}`;
}

/** A version number of the API (an int64 as a string). */
export function versionOf(text: string | undefined): number {
  const n = Number(text ?? 0);
  return Number.isFinite(n) ? n : 0;
}
