import { connect } from 'node:net';

/** Where a statement runs, as the protocol's cancel request names it: the address the client connected to, and its key. */
export interface CancelKey {
  /** Host name or address; a path (starting with `/`) is a Unix socket directory, as libpq takes it. */
  readonly host: string;
  readonly port: number;
  /** The BackendKeyData the server (or PgBouncer, which forwards the request by it) gave the connection. */
  readonly processID: number;
  readonly secretKey: number;
}

/** PostgreSQL's CancelRequest code (protocol 3.0): 1234 in the high 16 bits, 5678 in the low. */
const CANCEL_REQUEST_CODE = 80_877_102;
/** Bound on delivering one cancel request (a pooler that accepts and never reads must not hold a socket open). */
const SEND_TIMEOUT_MS = 5_000;

/**
 * Sends the protocol's cancel request on a connection of its own, as libpq's PQcancel does. PgBouncer forwards it to
 * the server connection its client is linked to; `pg_cancel_backend(pid)` would need the server's pid, which a client
 * behind PgBouncer never sees. Resolves once delivered (or once that failed: the caller's fallback takes over).
 */
export function sendCancelRequest(key: CancelKey): Promise<void> {
  return new Promise((resolve) => {
    const socket = key.host.startsWith('/') ? connect({ path: `${key.host}/.s.PGSQL.${key.port}` }) : connect({ host: key.host, port: key.port });
    const done = () => {
      socket.destroy();
      resolve();
    };
    socket.setTimeout(SEND_TIMEOUT_MS, done);
    socket.once('error', done);
    socket.once('close', done);
    socket.once('connect', () => {
      const packet = Buffer.alloc(16);
      packet.writeInt32BE(16, 0);
      packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
      packet.writeInt32BE(key.processID, 8);
      packet.writeInt32BE(key.secretKey, 12);
      // Nothing comes back: the other end closes once the request is delivered. Closing first would drop it — PgBouncer
      // forwards a cancel only while its requester is still connected ("client unexpected eof" otherwise), as libpq's
      // PQcancel waits for that close too.
      socket.write(packet);
    });
  });
}
