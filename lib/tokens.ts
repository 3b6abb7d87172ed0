/** Injection token of the validated options (a Symbol, so it never collides). */
export const DBMANAGER_CONFIG = Symbol('nestjs-dbmanager:config');

// A name cannot contain "<", so the default token can never equal a named one.
const DEFAULT = '<default>';

/** Token of a connection (`DbConnection`); no name = the connection that is default at startup. */
export function getConnectionToken(name?: string): string {
  return `nestjs-dbmanager:connection:${name ?? DEFAULT}`;
}

/** Token of a connection's EntityManager; no name = the default connection's. */
export function getEntityManagerToken(name?: string): string {
  return `nestjs-dbmanager:entity-manager:${name ?? DEFAULT}`;
}
