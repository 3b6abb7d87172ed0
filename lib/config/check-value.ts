import { type FieldKind, MAX_DURATION_MS } from './config-schema';
import { didYouMean } from './did-you-mean';
import { exactDurationMs, formatDuration } from './duration';
import { isPlainObject } from './env-interpolation';

/** Why a value was refused (the message that follows the field's path). */
export class Problem {
  constructor(readonly problem: string) {}
}

/** What `checkValue` returns for a field of kind `F`: its value checked and normalised (durations in ms), aliases not yet replaced. */
export type CheckedValue<F extends FieldKind> = F extends { kind: 'string'; oneOf: readonly (infer V)[] }
  ? V | (F extends { aliases: readonly (infer A)[] } ? A : never)
  : F extends { kind: 'string' }
    ? string
    : F extends { kind: 'int' | 'duration' }
      ? number
      : F extends { kind: 'bool' }
        ? boolean
        : F extends { kind: 'tags' }
          ? Record<string, string>
          : Record<string, unknown>;

/** The fields of a table as `checkValue` returns them, each absent when not set. */
export type CheckedFields<T extends Readonly<Record<string, FieldKind>>> = { -readonly [K in keyof T]?: CheckedValue<T[K]> };

export function isProblem(value: unknown): value is Problem {
  return value instanceof Problem;
}

/** What a message may say about a value: nothing at all when it belongs to a secret (not even a fragment). */
export const NOT_SHOWN = 'a value (not shown)';

/**
 * Checks one raw value against its field's kind and returns it normalised (a duration in ms, a boolean…), or the
 * Problem. `hidden` keeps the value out of the message (a secret field, or a value read out of a DSN).
 */
export function checkValue(type: FieldKind, value: unknown, hidden = type.kind === 'string' && type.secret === true): unknown {
  const shown = hidden ? NOT_SHOWN : describe(value);
  switch (type.kind) {
    case 'string': {
      if (typeof value !== 'string') return new Problem(`must be a string, got ${shown}`);
      if (type.nonEmpty && value.trim() === '') return new Problem('must not be empty');
      const accepted = type.oneOf && [...type.oneOf, ...(type.aliases ?? [])];
      if (accepted && !accepted.includes(value)) {
        const hint = didYouMean(value, accepted);
        return new Problem(`must be one of ${accepted.join(', ')}${type.oneOfNote ? ` (${type.oneOfNote})` : ''}, got ${shown}${hint ? ` (did you mean "${hint}"?)` : ''}`);
      }
      return value;
    }
    case 'int': {
      const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < type.min || n > type.max) {
        return new Problem(`must be an integer from ${type.min} to ${type.max}, got ${shown}`);
      }
      return n;
    }
    case 'duration': {
      const ms = exactDurationMs(value);
      if (ms === undefined || ms > MAX_DURATION_MS) {
        return new Problem(`must be a duration such as "500ms", "30s", "5m", "1h30m" or a number of milliseconds (0 to ${MAX_DURATION_MS}), got ${shown}`);
      }
      const floor = type.floorMs ?? 1;
      const zeroAllowed = type.zeroAllowed ?? true;
      if ((ms === 0 && !zeroAllowed) || (ms > 0 && ms < floor)) {
        const reason = type.floorReason ?? 'a fraction of a millisecond would round to 0, which means none';
        return new Problem(`must be ${zeroAllowed ? '0 (off) or ' : ''}at least ${formatDuration(floor)} (${reason}), got ${shown}`);
      }
      return Math.round(ms);
    }
    case 'bool': {
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === 'false') return value === 'true';
      return new Problem(`must be true or false, got ${shown}`);
    }
    case 'tags': {
      if (!isPlainObject(value)) return new Problem(`must be a map of string to string, got ${shown}`);
      const tags: Record<string, string> = {};
      for (const [k, v] of Object.entries(value)) {
        if (!['string', 'number', 'boolean'].includes(typeof v)) return new Problem(`tag "${k}" must be a string, got ${describe(v)}`);
        Object.defineProperty(tags, k, { value: String(v), enumerable: true, writable: true, configurable: true });
      }
      return tags;
    }
    case 'mikroOrm':
      return isPlainObject(value) ? value : new Problem(`must be an object, got ${shown}`);
    case 'connections':
      return isPlainObject(value) ? value : new Problem(`must be a map of connection name to settings, got ${shown}`);
  }
}

/** A short description of a (non-secret) value for a message. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'function') return 'a function';
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
