import type { Socket } from 'node:net';
import { BSON, Long, type Document } from 'bson';
import { BaseWireServer, type WireServer, type WireSession } from './wire-server';

/**
 * Minimal standalone MongoDB server: OP_MSG for commands plus legacy OP_QUERY/OP_REPLY for the
 * driver's first `isMaster`. It stores nothing — every collection is empty and writes are
 * acknowledged. `hello` carries no `topologyVersion`, so the driver polls instead of streaming.
 */

export interface MongoWireServerOptions {
  port?: number;
}

export function startMongoWireServer(opts: MongoWireServerOptions = {}): Promise<WireServer> {
  return MongoWireServer.create(opts.port);
}

class MongoWireServer extends BaseWireServer {
  private constructor(port?: number) {
    super(port);
  }

  static async create(port?: number): Promise<MongoWireServer> {
    const server = new MongoWireServer(port);
    await server.start();
    return server;
  }

  protected openSession(socket: Socket, connectionId: number): WireSession {
    return new MongoSession(socket, connectionId);
  }
}

// ---------------------------------------------------------------------------------------------
// Wire protocol (https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/)

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;
const HEADER_LENGTH = 16;
const MSG_CHECKSUM_PRESENT = 1 << 0;
const MSG_MORE_TO_COME = 1 << 1;

const MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024;
const MAX_MESSAGE_SIZE_BYTES = 48_000_000;

interface Request {
  requestId: number;
  opCode: typeof OP_QUERY | typeof OP_MSG;
  /** Database the command targets (`$db` or the OP_QUERY namespace). */
  db: string;
  command: Document;
  /** The client sent moreToCome: it wants no reply. */
  noReply: boolean;
}

function readCString(buf: Buffer, pos: number): [value: string, next: number] {
  const end = buf.indexOf(0, pos);
  return [buf.toString('utf8', pos, end), end + 1];
}

function readDocument(buf: Buffer, pos: number): [doc: Document, next: number] {
  const size = buf.readInt32LE(pos);
  return [BSON.deserialize(buf.subarray(pos, pos + size)), pos + size];
}

/** OP_MSG: a body section (kind 0) plus optional document sequences (kind 1) merged into it. */
function decodeOpMsg(message: Buffer, requestId: number): Request {
  const flags = message.readUInt32LE(HEADER_LENGTH);
  const end = message.length - (flags & MSG_CHECKSUM_PRESENT ? 4 : 0);
  let command: Document = {};
  const sequences: Record<string, Document[]> = {};
  let pos = HEADER_LENGTH + 4;
  while (pos < end) {
    const kind = message.readUInt8(pos++);
    if (kind === 0) {
      [command, pos] = readDocument(message, pos);
      continue;
    }
    const sectionEnd = pos + message.readInt32LE(pos);
    const [identifier, firstDoc] = readCString(message, pos + 4);
    let docPos = firstDoc;
    const docs: Document[] = [];
    while (docPos < sectionEnd) {
      let doc: Document;
      [doc, docPos] = readDocument(message, docPos);
      docs.push(doc);
    }
    sequences[identifier] = docs;
    pos = sectionEnd;
  }
  return {
    requestId,
    opCode: OP_MSG,
    db: typeof command.$db === 'string' ? command.$db : 'admin',
    command: { ...command, ...sequences },
    noReply: (flags & MSG_MORE_TO_COME) !== 0,
  };
}

/** OP_QUERY against `<db>.$cmd`, which the driver only uses for its first handshake. */
function decodeOpQuery(message: Buffer, requestId: number): Request {
  const [namespace, afterName] = readCString(message, HEADER_LENGTH + 4);
  const [query] = readDocument(message, afterName + 8);
  const command = (query.$query as Document | undefined) ?? query;
  return { requestId, opCode: OP_QUERY, db: namespace.split('.')[0], command, noReply: false };
}

function encodeReply(request: Request, reply: Document): Buffer {
  const doc = BSON.serialize(reply);
  const body =
    request.opCode === OP_MSG
      ? Buffer.concat([Buffer.alloc(4), Buffer.from([0]), doc]) // flags 0, one kind-0 section
      : Buffer.concat([Buffer.alloc(20), doc]); // OP_REPLY: flags, cursorId, startingFrom, numberReturned
  if (request.opCode === OP_QUERY) body.writeInt32LE(1, 16);
  const header = Buffer.alloc(HEADER_LENGTH);
  header.writeInt32LE(HEADER_LENGTH + body.length, 0);
  header.writeInt32LE(0, 4);
  header.writeInt32LE(request.requestId, 8);
  header.writeInt32LE(request.opCode === OP_MSG ? OP_MSG : OP_REPLY, 12);
  return Buffer.concat([header, body]);
}

// ---------------------------------------------------------------------------------------------
// Commands

const emptyCursor = (ns: string): Document => ({ cursor: { id: Long.ZERO, ns, firstBatch: [] }, ok: 1 });

/** Answers one command; the first key of the document names it. */
function runCommand(name: string, db: string, command: Document, connectionId: number): Document {
  const target = command[name];
  const collection = typeof target === 'string' ? target : undefined;
  switch (name) {
    case 'hello':
    case 'isMaster':
    case 'ismaster':
      return {
        ...(command.helloOk ? { helloOk: true } : {}),
        isWritablePrimary: true,
        ismaster: true,
        maxBsonObjectSize: MAX_BSON_OBJECT_SIZE,
        maxMessageSizeBytes: MAX_MESSAGE_SIZE_BYTES,
        maxWriteBatchSize: 100_000,
        localTime: new Date(),
        logicalSessionTimeoutMinutes: 30,
        connectionId,
        minWireVersion: 0,
        maxWireVersion: 21,
        readOnly: false,
        ok: 1,
      };
    case 'ping':
    case 'endSessions':
    case 'create':
    case 'drop':
    case 'dropDatabase':
    case 'dropIndexes':
    case 'abortTransaction':
    case 'commitTransaction':
      return { ok: 1 };
    case 'buildInfo':
    case 'buildinfo':
      return { version: '7.0.0', versionArray: [7, 0, 0, 0], maxBsonObjectSize: MAX_BSON_OBJECT_SIZE, ok: 1 };
    case 'getParameter':
      return { featureCompatibilityVersion: { version: '7.0' }, ok: 1 };
    case 'find':
    case 'listIndexes':
      return emptyCursor(`${db}.${collection ?? ''}`);
    case 'aggregate':
      return emptyCursor(collection ? `${db}.${collection}` : `${db}.$cmd.aggregate`);
    case 'listCollections':
      return emptyCursor(`${db}.$cmd.listCollections`);
    case 'getMore':
      return { cursor: { id: Long.ZERO, ns: `${db}.${String(command.collection)}`, nextBatch: [] }, ok: 1 };
    case 'killCursors':
      return { cursorsKilled: [], cursorsNotFound: [], cursorsAlive: [], cursorsUnknown: [], ok: 1 };
    case 'listDatabases':
      return { databases: [], totalSize: 0, ok: 1 };
    case 'insert':
      return { n: Array.isArray(command.documents) ? command.documents.length : 0, ok: 1 };
    case 'update':
      return { n: 0, nModified: 0, ok: 1 };
    case 'delete':
    case 'count':
      return { n: 0, ok: 1 };
    case 'distinct':
      return { values: [], ok: 1 };
    case 'findAndModify':
      return { lastErrorObject: { n: 0, updatedExisting: false }, value: null, ok: 1 };
    case 'createIndexes':
      return { createdCollectionAutomatically: false, numIndexesBefore: 1, numIndexesAfter: 1, ok: 1 };
    default:
      return { ok: 0, errmsg: `no such command: ${name}`, code: 59, codeName: 'CommandNotFound' };
  }
}

// ---------------------------------------------------------------------------------------------
// Session

class MongoSession implements WireSession {
  private buffered = Buffer.alloc(0);
  /** Awaitable `hello` replies held back until maxAwaitTimeMS passes. */
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly socket: Socket,
    private readonly connectionId: number,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  dispose(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 4) {
      const length = this.buffered.readInt32LE(0);
      if (length < HEADER_LENGTH || length > MAX_MESSAGE_SIZE_BYTES) return void this.socket.destroy();
      if (this.buffered.length < length) return;
      const message = this.buffered.subarray(0, length);
      this.buffered = this.buffered.subarray(length);
      try {
        this.onMessage(message);
      } catch {
        // Undecodable input: a real server drops the connection too.
        return void this.socket.destroy();
      }
    }
  }

  private onMessage(message: Buffer): void {
    const requestId = message.readInt32LE(4);
    const opCode = message.readInt32LE(12);
    if (opCode !== OP_MSG && opCode !== OP_QUERY) return void this.socket.destroy();
    const request = opCode === OP_MSG ? decodeOpMsg(message, requestId) : decodeOpQuery(message, requestId);
    const name = Object.keys(request.command)[0] ?? '';
    const reply = runCommand(name, request.db, request.command, this.connectionId);
    if (request.noReply) return;
    const wait = Number(request.command.maxAwaitTimeMS);
    const awaitable = (name === 'hello' || name.toLowerCase() === 'ismaster') && request.command.topologyVersion && wait > 0;
    if (!awaitable) return this.write(encodeReply(request, reply));
    // Nothing ever changes here, so an awaitable hello simply answers when its wait expires.
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.write(encodeReply(request, reply));
    }, wait);
    timer.unref();
    this.timers.add(timer);
  }

  private write(data: Buffer): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(data);
  }
}
