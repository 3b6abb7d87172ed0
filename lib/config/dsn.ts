import { DATABASE_FACTS, factsOf } from '../drivers/database-facts';
import type { DatabaseType } from '../vocabulary';

/** The fields a DSN carries, already URL-decoded: where it points, and its query parameters. */
export interface DsnParts extends TargetParts {
  params: Record<string, string>;
}

const KNOWN_SCHEMES = new Set<string>(Object.values(DATABASE_FACTS).flatMap((facts) => facts.dsnSchemes));

/**
 * Splits a connection URL into fields. Errors never quote the DSN or any part of it (it may hold a password), apart
 * from a scheme this library knows. A file database (SQLite) takes one of its schemes (`file:path`, `sqlite:path`)
 * or a bare path; `?database=` (SQL Server's way) names a server's database too. A query parameter given twice with
 * different values is refused (which one would win is a guess).
 */
export function parseDsn(type: DatabaseType, dsn: string): DsnParts | string {
  const { address, dsnSchemes } = factsOf(type);
  if (address === 'filepath') {
    const scheme = dsnSchemes.find((s) => dsn.startsWith(s));
    const filepath = scheme ? dsn.slice(scheme.length).replace(/^\/\//, '') : dsn;
    return filepath ? { filepath, params: {} } : 'names no file';
  }
  const ambiguous = unencodedUserInfo(dsn);
  if (ambiguous) return ambiguous;
  let url: URL;
  try {
    url = new URL(dsn);
  } catch {
    return `is not a valid URL (expected ${dsnSchemes[0]}//user:password@host:port/database)`;
  }
  if (!dsnSchemes.includes(url.protocol)) {
    const scheme = KNOWN_SCHEMES.has(url.protocol) ? `scheme "${url.protocol}"` : 'a scheme';
    return `has ${scheme} but a ${type} connection takes ${dsnSchemes.join(' or ')}`;
  }
  const params: Record<string, string> = {};
  const twice = new Set<string>();
  url.searchParams.forEach((value, key) => {
    if (Object.hasOwn(params, key) && params[key] !== value) twice.add(key);
    Object.defineProperty(params, key, { value, enumerable: true, writable: true, configurable: true });
  });
  if (twice.size) return `has the query parameter${twice.size > 1 ? 's' : ''} ${[...twice].join(', ')} twice, with different values: keep one`;
  const decode = (text: string) => {
    try {
      return decodeURIComponent(text);
    } catch {
      return text;
    }
  };
  const path = decode(url.pathname.replace(/^\//, ''));
  const database = path || params.database || params.dbname || undefined;
  delete params.database;
  delete params.dbname;
  return {
    host: url.hostname ? url.hostname.replace(/^\[|\]$/g, '') : undefined,
    port: url.port ? Number(url.port) : undefined,
    user: url.username ? decode(url.username) : undefined,
    password: url.password ? decode(url.password) : undefined,
    database,
    params,
  };
}

/**
 * Why a URL's user-info cannot be read unambiguously, or undefined. A password pasted unencoded moves the host: in
 * `postgres://u:Xk9@mP2/qR7@db/app` a URL parser reads host `mP2`. So an `@` after the host, a second `@` in the
 * user-info, or a `%` that starts no escape is an error (that never quotes the DSN).
 */
function unencodedUserInfo(dsn: string): string | undefined {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(dsn);
  if (!scheme) return undefined;
  const rest = dsn.slice(scheme[0].length);
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
  const afterAuthority = authorityEnd === -1 ? '' : rest.slice(authorityEnd);
  const at = authority.lastIndexOf('@');
  const userInfo = at === -1 ? '' : authority.slice(0, at);
  if (!afterAuthority.includes('@') && !userInfo.includes('@') && !/%(?![0-9A-Fa-f]{2})/.test(userInfo)) return undefined;
  return (
    'cannot be split into user, password and host: a reserved character (@ : / ? # % & or a space) in its user or password is not percent-encoded. ' +
    'Percent-encode the user and password (encodeURIComponent: @ is %40, / is %2F, ? is %3F, # is %23, % is %25), ' +
    'or leave the password out of the dsn and set it in the password field'
  );
}

/** Where a connection points, as far as a description of it goes. */
export interface TargetParts {
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  filepath?: string;
}

/**
 * A DSN-shaped description of where a connection goes, with credentials escaped and the password masked; `defaults`
 * fill what the config leaves out. Takes the config itself (its password is non-enumerable: a spread would drop it).
 */
export function describeTarget(type: DatabaseType, parts: TargetParts, defaults: Pick<TargetParts, 'port' | 'database'> = {}): string {
  const { address, dsnSchemes } = factsOf(type);
  const scheme = dsnSchemes[0];
  if (address === 'filepath') return `${scheme}${parts.filepath ?? ''}`;
  const user = parts.user ? `${encodeURIComponent(parts.user)}${parts.password ? ':***' : ''}@` : '';
  const host = parts.host?.includes(':') ? `[${parts.host}]` : parts.host ?? 'localhost';
  const port = parts.port ?? defaults.port;
  return `${scheme}//${user}${host}${port ? `:${port}` : ''}/${encodeURIComponent(parts.database ?? defaults.database ?? '')}`;
}
