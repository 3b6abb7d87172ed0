/**
 * The MariaDB connector (`mariadb` package, the client library of @mikro-orm/mariadb on MikroORM 6). Its public
 * `destroy()` first tries to KILL the thread over a new connection — to a hung server, a new connection that hangs
 * too — so a hung connection is torn down through the socket its `__tests.getSocket()` exposes, when it does.
 */

interface MariaDbConnection {
  serverVersion?(): string;
  __tests?: { getSocket?(): { destroy(): void; emit(event: 'error', error: Error): boolean } | undefined };
  destroy?(): void;
}

/** The server's version string (`10.11.19-MariaDB-…`), from the connector's public `serverVersion()`. */
export function mariadbServerVersion(connection: object): string | undefined {
  try {
    return (connection as MariaDbConnection).serverVersion?.();
  } catch {
    return undefined;
  }
}

/**
 * Tears a connection's socket down at once; false when only the slower public `destroy()` was available. The connector
 * fails its running query on the socket's `error` (or `end`), never on `close`, and ignores a socket error once the
 * connection is closing (which the pool's teardown starts right after): so the error is delivered now, as a network
 * failure would be, before the socket goes. A plain destroy left the query's promise pending forever.
 */
export function destroyMariadbSocket(connection: object): boolean {
  const c = connection as MariaDbConnection;
  const socket = typeof c.__tests?.getSocket === 'function' ? c.__tests.getSocket() : undefined;
  if (socket) {
    socket.emit('error', Object.assign(new Error('the connection was torn down (a ping timed out, or shutdown_timeout was spent)'), { code: 'ECONNRESET' }));
    socket.destroy();
    return true;
  }
  c.destroy?.();
  return false;
}
