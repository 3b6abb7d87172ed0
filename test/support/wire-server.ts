import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** A fake database server that real drivers can connect to over TCP. */
export interface WireServer {
  readonly host: string;
  /** Fixed after the first start; a restart listens on the same port again. */
  readonly port: number;
  /** Client sockets currently open. */
  readonly openSockets: number;
  /** Client sockets accepted since creation. */
  readonly connectionsAccepted: number;
  /** Destroys every client socket and stops listening (connections are refused afterwards). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** Stops for good. */
  close(): Promise<void>;
}

/** Protocol-specific handler for one accepted client socket. */
export interface WireSession {
  /** Called once the socket is gone, whoever closed it; must clear any pending timers. */
  dispose(): void;
}

/**
 * Listener plumbing shared by the protocol servers: socket tracking, stop/start on a
 * fixed port, and teardown that leaves no socket or timer behind.
 */
export abstract class BaseWireServer implements WireServer {
  readonly host = '127.0.0.1';
  private currentPort: number;
  private server: Server | undefined;
  private readonly sockets = new Map<Socket, Promise<void>>();
  private accepted = 0;
  private closedForGood = false;

  protected constructor(port = 0) {
    this.currentPort = port;
  }

  get port(): number {
    return this.currentPort;
  }

  get openSockets(): number {
    return this.sockets.size;
  }

  get connectionsAccepted(): number {
    return this.accepted;
  }

  /** Creates the protocol session for a freshly accepted socket; `connectionId` starts at 1. */
  protected abstract openSession(socket: Socket, connectionId: number): WireSession;

  async start(): Promise<void> {
    if (this.closedForGood) throw new Error('wire server was closed');
    if (this.server) return;
    const server = createServer((socket) => this.accept(socket));
    server.listen({ host: this.host, port: this.currentPort });
    // `once` rejects on 'error', e.g. EADDRINUSE when the fixed port was taken meanwhile.
    await once(server, 'listening');
    // A forgotten server must not keep the test process alive.
    server.unref();
    this.currentPort = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const listenerClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    const socketsClosed = [...this.sockets.values()];
    for (const socket of this.sockets.keys()) socket.destroy();
    await Promise.all([listenerClosed, ...socketsClosed]);
  }

  async close(): Promise<void> {
    this.closedForGood = true;
    await this.stop();
  }

  private accept(socket: Socket): void {
    this.accepted += 1;
    socket.setNoDelay(true);
    // Resets from clients that vanish are expected; without a listener they would crash the process.
    socket.on('error', () => undefined);
    const session = this.openSession(socket, this.accepted);
    const closed = new Promise<void>((resolve) =>
      socket.once('close', () => {
        this.sockets.delete(socket);
        session.dispose();
        resolve();
      }),
    );
    this.sockets.set(socket, closed);
  }
}
