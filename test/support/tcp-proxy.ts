import { connect, createServer, type Server, type Socket } from 'node:net';

/** A TCP proxy between the app and a database, for simulating network faults. */
export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /** Client-side sockets currently open (accepted from the app). */
  readonly openSockets: number;
  /** Sockets currently open to the target. */
  readonly upstreamSockets: number;
  /** Every socket accepted from the app since the proxy started: a new connect shows here even once it is gone. */
  readonly acceptedSockets: number;
  /** From now on accept new connections but never answer nor connect upstream; existing connections swallow all data both ways. */
  blackhole(): void;
  /** Back to normal forwarding for new connections (blackholed ones stay silent: their byte stream is already broken). */
  forward(): void;
  /** Destroy every current client and upstream socket. */
  dropAll(): void;
  close(): Promise<void>;
}

interface Connection {
  readonly client: Socket;
  upstream?: Socket;
  /** Set by blackhole(): nothing is relayed any more, in either direction, and upstream closes are not passed on. */
  swallowing: boolean;
}

const HOST = '127.0.0.1';
const ignore = (): void => undefined;

class FaultProxy implements TcpProxy {
  readonly host = HOST;
  private readonly clients = new Set<Socket>();
  private readonly upstreams = new Set<Socket>();
  private readonly connections = new Set<Connection>();
  /** Resolves when that socket has emitted 'close' (destroy() alone does not mean the handle is closed yet). */
  private readonly closing = new Map<Socket, Promise<void>>();
  private blackholed = false;
  private accepted = 0;
  private readonly server: Server;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => this.accept(client));
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  get openSockets(): number {
    return this.clients.size;
  }

  get upstreamSockets(): number {
    return this.upstreams.size;
  }

  get acceptedSockets(): number {
    return this.accepted;
  }

  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, HOST, () => {
        this.server.off('error', reject);
        this.server.on('error', ignore); // after listen, errors only concern single connections
        resolve();
      });
    });
  }

  blackhole(): void {
    this.blackholed = true;
    for (const connection of this.connections) {
      connection.swallowing = true;
      // Resumed streams with a swallowing 'data' handler drop everything, even if a relay had paused for backpressure.
      connection.client.resume();
      connection.upstream?.resume();
    }
  }

  forward(): void {
    this.blackholed = false;
  }

  dropAll(): void {
    for (const socket of [...this.clients, ...this.upstreams]) socket.destroy();
  }

  async close(): Promise<void> {
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const socketsClosed = [...this.closing.values()];
    this.dropAll();
    // Upstream sockets are not the server's connections, so its close callback does not wait for them.
    await Promise.all([serverClosed, ...socketsClosed]);
  }

  private accept(client: Socket): void {
    this.accepted++;
    const connection: Connection = { client, swallowing: this.blackholed };
    this.track(client, this.clients);
    this.connections.add(connection);
    client.once('close', () => this.connections.delete(connection));
    if (connection.swallowing) {
      client.resume(); // flowing with no 'data' listener: bytes are read and dropped, never answered
      return;
    }
    const upstream = connect(this.target);
    connection.upstream = upstream;
    this.track(upstream, this.upstreams);
    relay(client, upstream, connection);
    relay(upstream, client, connection);
    // The proxy never keeps an upstream socket whose app-side socket is gone.
    client.once('close', (hadError) => (hadError ? upstream.destroy() : upstream.destroySoon()));
    upstream.once('close', (hadError) => {
      if (connection.swallowing) return; // a partitioned server's close never reaches the app
      if (hadError) client.destroy();
      else client.destroySoon();
    });
  }

  private track(socket: Socket, set: Set<Socket>): void {
    set.add(socket);
    socket.on('error', ignore); // resets are expected here; 'close' does the bookkeeping
    const closed = new Promise<void>((resolve) =>
      socket.once('close', () => {
        set.delete(socket);
        this.closing.delete(socket);
        resolve();
      }),
    );
    this.closing.set(socket, closed);
  }
}

/** Copy `from` into `to` with backpressure, unless the connection has been blackholed. */
function relay(from: Socket, to: Socket, connection: Connection): void {
  from.on('data', (chunk: Buffer) => {
    if (connection.swallowing || to.destroyed) return;
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.once('end', () => {
    if (!connection.swallowing) to.end();
  });
}

/** Listen on 127.0.0.1 (a free port unless given) and forward every connection to `target`. */
export async function startTcpProxy(target: { host: string; port: number }, opts: { port?: number } = {}): Promise<TcpProxy> {
  const proxy = new FaultProxy(target);
  await proxy.listen(opts.port ?? 0);
  return proxy;
}
