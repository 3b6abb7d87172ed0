import { Socket } from 'node:net';
import type { CancelKey } from '../pgbouncer/cancel-request';

/**
 * node-postgres. A client's socket is only reachable through its private `connection.stream`, but it is the very
 * socket we hand pg through its public `stream` option: `SocketTracker` makes them, so shutdown can reach a connect
 * still under way, and `socketOf` finds a connected client's one to tear a hung query down at once.
 */

/** The sockets one pool's pg clients have open (pg's `stream` option makes them through `create`). */
export class SocketTracker {
  private readonly open = new Set<Socket>();

  /** pg's `stream` option: the plain socket pg would make itself (TLS wraps it later), remembered until it closes. */
  readonly create = (): Socket => {
    const socket = new Socket();
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    return socket;
  };

  /** Destroys every socket still open, connects under way included. */
  destroyAll(): void {
    for (const socket of this.open) socket.destroy();
  }
}

/** A connected pg client's socket, or undefined when this pg version keeps it elsewhere. */
export function socketOf(client: object): { destroy(): void } | undefined {
  const stream = (client as { connection?: { stream?: { destroy?: unknown } } }).connection?.stream;
  return typeof stream?.destroy === 'function' ? (stream as { destroy(): void }) : undefined;
}

/** Said once when `socketOf` finds no socket: what is lost without it. */
export const SOCKET_UNREACHABLE = 'this pg version keeps its socket elsewhere: a hung connection is only torn down by shutdown';

/**
 * What a connected pg client's statements can be cancelled by: the address it connected to and the BackendKeyData it
 * got (pg keeps them as `host`, `port`, `processID` and `secretKey`), or undefined when this pg version does not.
 */
export function cancelKeyOf(client: object): CancelKey | undefined {
  const { host, port, processID, secretKey } = client as { host?: unknown; port?: unknown; processID?: unknown; secretKey?: unknown };
  if (typeof host !== 'string' || typeof processID !== 'number' || typeof secretKey !== 'number') return undefined;
  return { host, port: Number(port) || 5432, processID, secretKey };
}
