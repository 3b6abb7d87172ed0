const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;

/**
 * Parses a Go-style duration (`500ms`, `30s`, `5m`, `1h30m`) or a number of milliseconds, rounded to whole ms.
 * Returns `undefined` when the value is not a duration, so the caller can report the field.
 */
export function parseDuration(value: unknown): number | undefined {
  const ms = exactDurationMs(value);
  return ms === undefined ? undefined : Math.round(ms);
}

/** The duration in ms before rounding, so a floor check sees that `0.4` is not `0`. */
export function exactDurationMs(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  if (!DURATION.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART)) total += Number(amount) * UNIT_MS[unit];
  return Number.isFinite(total) ? total : undefined;
}

/** Formats milliseconds back into the shortest readable duration, for messages. */
export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0 && ms > 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}
