import type { QueryListener } from '../../vocabulary';

/**
 * tedious (SQL Server). Whether TLS is really on: on MikroORM 7 the session makes each connection, so it listens to
 * tedious' public `secure` event before the connection connects; on MikroORM 6 knex makes it (the event fires before
 * we can listen), so only the private `messageIo.tlsNegotiationComplete` says. Both checks fail closed: a connection
 * that cannot be shown to be encrypted is refused instead of letting `sslmode: require` run in plain text.
 */

/** The slice of a tedious `Connection` this library uses (all public in tedious' types but `messageIo`). */
export interface TediousConnection {
  closed?: unknown;
  close(): void;
  connect(callback: (error?: Error) => void): void;
  on(event: 'error', listener: (error: unknown) => void): unknown;
  once(event: 'secure' | 'end', listener: () => void): unknown;
  once(event: 'connect', listener: (error?: unknown) => void): unknown;
  messageIo?: { tlsNegotiationComplete?: unknown };
}

/** Whether a connection knex made negotiated TLS: `unknown` when this tedious version does not say (treat it as `no`). */
export function tlsState(connection: object): 'yes' | 'no' | 'unknown' {
  const complete = (connection as TediousConnection).messageIo?.tlsNegotiationComplete;
  return complete === true ? 'yes' : complete === false ? 'no' : 'unknown';
}

/**
 * Remembers which connections negotiated TLS inside the TDS stream, from tedious' public `secure` event: `listen` on a
 * connection before it connects. (TDS 8's `encrypt: 'strict'` wraps the socket in TLS before any TDS is sent, and
 * emits no event: a strict connection that connected is encrypted by construction.)
 */
export class TlsWitness {
  private readonly secured = new WeakSet<object>();

  listen(connection: TediousConnection): void {
    connection.once('secure', () => this.secured.add(connection));
  }

  sawTls(connection: object): boolean {
    return this.secured.has(connection);
  }
}

/** True once tedious has torn the connection down (and emitted `end`), so closing it again would wait for nothing. */
export function isClosed(connection: object): boolean {
  return (connection as TediousConnection).closed === true;
}

/** Closes at once: destroys the socket and fails the running request with ECLOSE (no round trip to a hung server). */
export function closeTedious(connection: object): void {
  (connection as TediousConnection).close();
}

/** Closes a connection and resolves once tedious says it has ended (at once when it already has). */
export function closeTediousAndWait(connection: object): Promise<void> {
  const c = connection as TediousConnection;
  if (isClosed(c)) return Promise.resolve();
  return new Promise((resolve) => {
    c.once('end', () => resolve());
    c.close();
  });
}

/** A tedious Request as far as watching it goes: its SQL, and the callback tedious calls when it ends (both public). */
interface TediousRequest {
  sqlTextOrProcedure?: unknown;
  callback?: (error: unknown, ...rest: unknown[]) => unknown;
}

type Method = (this: unknown, ...args: unknown[]) => unknown;

/**
 * Wraps a tedious method that takes a Request (`execSql`, `execSqlBatch`, `callProcedure`) so each request's statement
 * reaches `listener` and its end is reported: tedious takes a Request object (SQL and callback inside), not SQL
 * arguments, so the request's callback is wrapped.
 */
export function watchRequests(listener: QueryListener): (original: Method) => Method {
  return (original) =>
    function watched(this: unknown, ...args: unknown[]): unknown {
      const request = args[0] as TediousRequest | undefined;
      const callback = request?.callback;
      if (!request || typeof request.sqlTextOrProcedure !== 'string' || typeof callback !== 'function') return original.apply(this, args);
      const done = listener(request.sqlTextOrProcedure);
      request.callback = function (this: unknown, error: unknown, ...rest: unknown[]) {
        done(error ?? undefined);
        return callback.call(this, error, ...rest);
      };
      return original.apply(this, args);
    };
}
