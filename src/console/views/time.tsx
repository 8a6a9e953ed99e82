import { localTime } from '../format.js';

/** A timestamp as local `YYYY-MM-DD HH:MM:SS`, the full ISO time in its title. */
export function Time({ iso }: { readonly iso: string | undefined }) {
  if (iso === undefined || iso === '') return null;
  return (
    <time dateTime={iso} title={iso}>
      {localTime(iso)}
    </time>
  );
}
