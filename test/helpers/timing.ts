/** The median of the gaps between consecutive arrival times (ms): how often something really came. */
export function medianGapMs(arrivals: readonly number[]): number {
  if (arrivals.length < 2) throw new Error('need at least two arrivals');
  const gaps = arrivals
    .slice(1)
    .map((at, i) => at - arrivals[i]!)
    .sort((a, b) => a - b);
  return gaps[Math.floor(gaps.length / 2)]!;
}
