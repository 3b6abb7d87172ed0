import type { ConfigIssue } from '../errors';
import { CONNECTION_FIELDS, type FieldSpec, snakeCase } from './config-schema';

const PLACEHOLDER = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/;
const ESCAPE = '$${';

/** True for `{}`-style objects; class instances (entities, clients) are left alone. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const CONNECTION_FIELD_BY_SPELLING = new Map<string, FieldSpec>(Object.entries<FieldSpec>(CONNECTION_FIELDS).flatMap(([key, spec]) => [[key, spec], [snakeCase(key), spec]]));

/**
 * Replaces `${VAR}` and `${VAR:-fallback}` in every string of a plain config tree, so passwords need not sit in the
 * file; `$${` is a literal `${`. A variable that is unset (and has no fallback), or a `${` that starts no valid
 * placeholder, becomes an issue naming the field's path. In a connection's `dsn`, a placeholder inside the user-info
 * (`postgres://${USER}:${PASSWORD}@host/db`) is percent-encoded, so any password can come from the environment; a
 * dsn that is one placeholder is taken as it is (it must then be a valid, encoded URL).
 * `path` is '' for a whole configuration, or `connections.<name>` for one connection's settings.
 */
export function interpolateEnv<T>(value: T, env: NodeJS.ProcessEnv, path: string, issues: ConfigIssue[]): T {
  const fieldDepth = path === '' ? 3 : 1;
  const walk = (item: unknown, itemPath: string, keys: string[]): unknown => {
    if (typeof item === 'string') {
      const isConnectionField = keys.length === fieldDepth && (fieldDepth === 1 || keys[0] === 'connections');
      const spec = isConnectionField ? CONNECTION_FIELD_BY_SPELLING.get(keys[keys.length - 1]) : undefined;
      const kind = spec?.kind === 'string' ? spec : undefined;
      return interpolateString(item, env, itemPath, issues, { secret: kind?.secret === true, url: kind?.url === true });
    }
    if (Array.isArray(item)) return item.map((entry, i) => walk(entry, `${itemPath}[${i}]`, [...keys, String(i)]));
    if (isPlainObject(item)) {
      const out: Record<string, unknown> = {};
      for (const [key, entry] of Object.entries(item)) {
        // defineProperty: a key named "__proto__" stays a key (and is reported) instead of replacing the prototype.
        Object.defineProperty(out, key, { value: walk(entry, itemPath ? `${itemPath}.${key}` : key, [...keys, key]), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    return item;
  };
  // The same tree with strings replaced by strings: its type is the input's.
  return walk(value, path, []) as T;
}

type Part = { literal: string } | { variable: string; fallback?: string };

/** Splits a string into literal text and placeholders; reports a `${` that starts none. */
function parseTemplate(text: string, path: string, issues: ConfigIssue[], secret: boolean): Part[] {
  const parts: Part[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    if (text.startsWith(ESCAPE, i)) {
      literal += '${';
      i += ESCAPE.length;
      continue;
    }
    if (!text.startsWith('${', i)) {
      literal += text[i++];
      continue;
    }
    const match = PLACEHOLDER.exec(text.slice(i));
    if (!match) {
      // A secret's text is never quoted, not even the part around the "${".
      const what = secret ? 'has a "${" that starts no valid placeholder' : `has ${JSON.stringify(text.slice(i, i + 30))}, which is not a valid placeholder`;
      issues.push({
        path,
        message: `${what}: write \${NAME} or \${NAME:-fallback} (a name is letters, digits and _, not starting with a digit), or $\${ for a literal \${`,
      });
      literal += '${';
      i += 2;
      continue;
    }
    if (literal) parts.push({ literal });
    literal = '';
    parts.push({ variable: match[1], fallback: match[2] });
    i += match[0].length;
  }
  if (literal) parts.push({ literal });
  return parts;
}

function interpolateString(text: string, env: NodeJS.ProcessEnv, path: string, issues: ConfigIssue[], field: { secret: boolean; url: boolean }): string {
  if (!text.includes('${')) return text;
  const parts = parseTemplate(text, path, issues, field.secret);
  const encoded = field.url ? placeholdersInUserInfo(parts) : new Set<number>();
  return parts
    .map((part, index) => {
      if ('literal' in part) return part.literal;
      let value = env[part.variable];
      if (value === undefined) value = part.fallback;
      if (value === undefined) {
        issues.push({ path, message: `environment variable ${part.variable} is not set (referenced as \${${part.variable}})` });
        return '';
      }
      return encoded.has(index) ? encodeURIComponent(value) : value;
    })
    .join('');
}

/**
 * Which placeholders of a URL template sit in its user-info (between `scheme://` and the `@` before the host): there
 * a value must be percent-encoded, or an `@`, `/`, `?` or `#` in a password would move the host.
 */
function placeholdersInUserInfo(parts: Part[]): Set<number> {
  // The template's shape with each placeholder as one neutral character: a value cannot change where the user-info is.
  let skeleton = '';
  const at = new Map<number, number>();
  parts.forEach((part, index) => {
    if ('literal' in part) skeleton += part.literal;
    else {
      at.set(index, skeleton.length);
      skeleton += 'x';
    }
  });
  const found = new Set<number>();
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(skeleton);
  if (!scheme) return found;
  const start = scheme[0].length;
  const authorityEnd = skeleton.slice(start).search(/[/?#]/);
  const end = skeleton.lastIndexOf('@', authorityEnd === -1 ? skeleton.length : start + authorityEnd);
  if (end < start) return found;
  for (const [index, position] of at) if (position >= start && position < end) found.add(index);
  return found;
}
