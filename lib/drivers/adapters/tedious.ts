/**
 * tedious (SQL Server). Whether TLS is really on is only known from its private `messageIo.tlsNegotiationComplete`
 * once connected (knex makes the connection, so its public `secure` event fires before we can listen): this check
 * fails closed, so a renamed field refuses the connection instead of letting `sslmode: require` run in plain text.
 */

interface TediousConnection {
  closed?: unknown;
  close(): void;
  messageIo?: { tlsNegotiationComplete?: unknown };
}

/** Whether the connection negotiated TLS: `unknown` when this tedious version does not say (treat it as `no`). */
export function tlsState(connection: object): 'yes' | 'no' | 'unknown' {
  const complete = (connection as TediousConnection).messageIo?.tlsNegotiationComplete;
  return complete === true ? 'yes' : complete === false ? 'no' : 'unknown';
}

/** True once tedious has torn the connection down (and emitted `end`), so closing it again would wait for nothing. */
export function isClosed(connection: object): boolean {
  return (connection as TediousConnection).closed === true;
}

/** Closes at once: destroys the socket and fails the running request with ECLOSE (no round trip to a hung server). */
export function closeTedious(connection: object): void {
  (connection as TediousConnection).close();
}
