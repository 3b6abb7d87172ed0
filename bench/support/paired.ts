import type { CellSample } from '../query-child';
import { bootstrapMedianInterval, median } from './stats';

/**
 * Paired per-round figures of two variants measured in the same rounds (bench/query-rounds.ts): the same round's two
 * runs saw the same machine, so their ratio and difference cancel what the machine did between rounds.
 */

/** A median with its 95 % bootstrap interval. */
export interface Interval {
  median: number;
  low: number;
  high: number;
}

/** Median and 95 % interval of per-round values. */
export function interval(values: number[]): Interval {
  const [low, high] = bootstrapMedianInterval(values);
  return { median: median(values), low, high };
}

/** Per round: subject's throughput ÷ reference's. */
export function ratios(subject: CellSample[], reference: CellSample[]): number[] {
  return subject.map((x, round) => x.opsPerSec / reference[round]!.opsPerSec);
}

/** Per round: subject's CPU µs per query − reference's. */
export function differences(subject: CellSample[], reference: CellSample[]): number[] {
  return subject.map((x, round) => x.cpuPerOpUs - reference[round]!.cpuPerOpUs);
}

/** A ratio interval, written like `0.990× (0.970–1.010)`. */
export const times = (r: Interval) => `${r.median.toFixed(3)}× (${r.low.toFixed(3)}–${r.high.toFixed(3)})`;

/** A µs interval, written like `+0.4 (-1.2…+2.0)`. */
export const micros = (r: Interval) => `${sign(r.median)} (${sign(r.low)}…${sign(r.high)})`;

export const sign = (us: number) => `${us >= 0 ? '+' : ''}${us.toFixed(1)}`;

/** How far either end of an interval lies from zero: the A/A control's CPU noise. */
export const reach = (r: Interval) => Math.max(Math.abs(r.low), Math.abs(r.high));
