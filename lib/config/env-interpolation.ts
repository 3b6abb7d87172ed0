import type { ConfigIssue } from '../errors';

const PLACEHOLDER = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** True for `{}`-style objects; class instances (entities, clients) are left alone. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Replaces `${VAR}` and `${VAR:-fallback}` in every string of a plain config tree, so passwords need not sit in the file.
 * A variable that is unset (and has no fallback) becomes an issue naming the field's path.
 */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv, path: string, issues: ConfigIssue[]): unknown {
  if (typeof value === 'string') {
    return value.replace(PLACEHOLDER, (whole, variable: string, fallback: string | undefined) => {
      const found = env[variable];
      if (found !== undefined) return found;
      if (fallback !== undefined) return fallback;
      issues.push({ path, message: `environment variable ${variable} is not set (referenced as \${${variable}})` });
      return whole;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => interpolateEnv(item, env, `${path}[${i}]`, issues));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      // defineProperty: a key named "__proto__" stays a key (and is reported) instead of replacing the prototype.
      Object.defineProperty(out, key, { value: interpolateEnv(item, env, path ? `${path}.${key}` : key, issues), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return value;
}
