/** Small statistics and number formatting for the bench tables. */

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile (p in 0…100) of an unsorted sample; NaN for an empty one. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/** `ours ÷ reference`, written like `0.98×`. */
export function ratio(ours: number, reference: number): string {
  if (!Number.isFinite(ours) || !Number.isFinite(reference) || reference === 0) return 'n/a';
  return `${(ours / reference).toFixed(2)}×`;
}

/** A duration in ms, with a precision that suits its size (`0.21 ms`, `4.8 ms`, `212 ms`, `30.0 s`). */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value >= 10_000) return `${(value / 1000).toFixed(1)} s`;
  if (value >= 100) return `${Math.round(value)} ms`;
  if (value >= 10) return `${value.toFixed(1)} ms`;
  return `${value.toFixed(2)} ms`;
}

/** Operations per second, rounded to 3 significant digits (`9 840`, `512`). */
export function opsPerSec(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const digits = Math.max(0, Math.floor(Math.log10(Math.abs(value) || 1)) - 2);
  const rounded = Math.round(value / 10 ** digits) * 10 ** digits;
  return rounded.toLocaleString('en-US').replaceAll(',', ' ');
}

/** Megabytes, one decimal. */
export function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * A 95 % bootstrap interval of the median of `values` (resampled `resamples` times with a fixed seed, so a run's
 * report is reproducible from its samples): [low, high].
 */
export function bootstrapMedianInterval(values: readonly number[], resamples = 2_000): [number, number] {
  if (values.length === 0) return [Number.NaN, Number.NaN];
  const random = seededRandom(0x2545f491);
  const medians: number[] = [];
  for (let i = 0; i < resamples; i++) {
    const sample = Array.from({ length: values.length }, () => values[Math.floor(random() * values.length)]!);
    medians.push(median(sample));
  }
  return [percentile(medians, 2.5), percentile(medians, 97.5)];
}

/** xorshift32: a seeded generator of numbers in [0, 1) — Math.random cannot be seeded, and a run should be repeatable. */
export function seededRandom(seed: number): () => number {
  let state = seed | 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

/** A shuffled copy of `items` (Fisher–Yates, drawing from `random`). */
export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
