import type { MongoClient } from 'mongodb';

/**
 * The MongoDB driver. `MongoClient.close()` ends the pooled server sessions with one fire-and-forget `endSessions`,
 * opening a connection for it when none is idle; to a hung server that handshake is not cancelled, so close() waited
 * up to acquire_timeout and the socket outlived it by up to connect_timeout. The session pool is private (`client.s`).
 */

/** The driver's server-session pool (mongodb 6 and 7), as far as `forgetServerSessions` touches it. */
interface SessionPool {
  sessions?: { clear?(): void };
  release?(session: unknown): void;
}

/**
 * Drops the client's pooled server sessions without telling the server (it expires them itself after
 * logicalSessionTimeoutMinutes, 30 min), so `close()` opens no connection. False when this driver keeps them elsewhere.
 */
export function forgetServerSessions(client: MongoClient): boolean {
  const pool = (client as unknown as { s?: { sessionPool?: SessionPool } }).s?.sessionPool;
  if (typeof pool?.sessions?.clear !== 'function' || typeof pool.release !== 'function') return false;
  // Sessions that close() ends (those of interrupted operations) must not refill the pool either.
  pool.release = () => undefined;
  pool.sessions.clear();
  return true;
}
