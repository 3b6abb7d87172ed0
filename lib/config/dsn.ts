import type { DatabaseType } from './config.types';

const DSN_SCHEMES: Record<DatabaseType, readonly string[]> = {
  postgres: ['postgres:', 'postgresql:'],
  mysql: ['mysql:'],
  mariadb: ['mariadb:', 'mysql:'],
  mssql: ['sqlserver:', 'mssql:'],
  mongodb: ['mongodb:', 'mongodb+srv:'],
  sqlite: ['file:', 'sqlite:'],
};

/** The fields a DSN carries, already URL-decoded. */
export interface DsnParts {
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  filepath?: string;
  params: Record<string, string>;
}

/**
 * Splits a connection URL into fields. Errors never repeat the DSN, which may hold a password.
 * SQLite accepts `file:path`, `sqlite:path` or a bare path; SQL Server also takes `?database=`.
 */
export function parseDsn(type: DatabaseType, dsn: string): DsnParts | string {
  if (type === 'sqlite') {
    const filepath = dsn.replace(/^(?:file|sqlite):(?:\/\/)?/, '');
    return filepath ? { filepath, params: {} } : 'names no file';
  }
  let url: URL;
  try {
    url = new URL(dsn);
  } catch {
    return `is not a valid URL (expected ${DSN_SCHEMES[type][0]}//user:password@host:port/database)`;
  }
  if (!DSN_SCHEMES[type].includes(url.protocol)) {
    return `has scheme "${url.protocol}" but a ${type} connection takes ${DSN_SCHEMES[type].join(' or ')}`;
  }
  const params: Record<string, string> = {};
  url.searchParams.forEach((value, key) => (params[key] = value));
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

/** A DSN-shaped description of where a connection goes, with credentials escaped and the password masked. */
export function describeTarget(type: DatabaseType, parts: { host?: string; port?: number; user?: string; password?: string; database?: string; filepath?: string }): string {
  if (type === 'sqlite') return `sqlite:${parts.filepath ?? ''}`;
  const scheme = DSN_SCHEMES[type][0];
  const user = parts.user ? `${encodeURIComponent(parts.user)}${parts.password ? ':***' : ''}@` : '';
  const host = parts.host?.includes(':') ? `[${parts.host}]` : parts.host ?? 'localhost';
  return `${scheme}//${user}${host}${parts.port ? `:${parts.port}` : ''}/${encodeURIComponent(parts.database ?? '')}`;
}
