/**
 * mysql2 (the client library of @mikro-orm/mysql, and of @mikro-orm/mariadb on MikroORM 7). Its `destroy()` ends the
 * socket gracefully (it waits on a hung server), so a hung connection is torn down through its `stream`.
 */

/** Tears a mysql2 connection's socket down at once; false when this mysql2 version keeps no `stream`. */
export function destroyMysql2Socket(connection: object): boolean {
  const stream = (connection as { stream?: { destroy?: unknown } }).stream;
  if (typeof stream?.destroy !== 'function') return false;
  (stream as { destroy(): void }).destroy();
  return true;
}
