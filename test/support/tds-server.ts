import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import { selfSignedCert } from './self-signed-cert';
import { BaseWireServer, type WireServer, type WireSession } from './wire-server';

/**
 * Minimal SQL Server (TDS 7.4) speaking just enough protocol for tedious/MikroORM (knex on 6, Kysely on 7):
 * PRELOGIN (TLS optional: negotiated inside PRELOGIN packets as SQL Server does, or TDS 8's TLS-first "strict"),
 * LOGIN7 with password check, SQL_BATCH, RPC (sp_executesql), Transaction Manager requests and ATTENTION.
 * Statements are answered by `runStatement`.
 */

export interface TdsServerOptions {
  port?: number;
  user?: string;
  password?: string;
  /**
   * TLS with a self-signed certificate for 127.0.0.1: `offered` encrypts a client that asks for it (and TDS 8 strict
   * clients) and lets others in plain; `required` refuses clients that do not ask for it (ENCRYPT_REQ). Default: none
   * (ENCRYPT_NOT_SUP, so a client that asks for TLS goes on in plain text — what a check must refuse).
   */
  tls?: 'offered' | 'required';
}

/** A TDS wire server, which also counts its encrypted sessions. */
export interface TdsWireServer extends WireServer {
  /** Sessions that completed a TLS handshake since the server was created. */
  readonly tlsSessions: number;
}

export function startTdsServer(opts: TdsServerOptions = {}): Promise<TdsWireServer> {
  return TdsServer.create(opts);
}

class TdsServer extends BaseWireServer implements TdsWireServer {
  private encrypted = 0;

  private constructor(
    private readonly credentials: { user: string; password: string },
    private readonly tls: { mode: 'offered' | 'required'; context: SecureContext } | undefined,
    port?: number,
  ) {
    super(port);
  }

  static async create(opts: TdsServerOptions): Promise<TdsServer> {
    const tls = opts.tls ? { mode: opts.tls, context: createSecureContext(selfSignedCert()) } : undefined;
    const server = new TdsServer({ user: opts.user ?? 'sa', password: opts.password ?? 'Passw0rd!' }, tls, opts.port);
    await server.start();
    return server;
  }

  get tlsSessions(): number {
    return this.encrypted;
  }

  protected openSession(socket: Socket, connectionId: number): WireSession {
    // SPIDs below 51 are reserved for system sessions on a real server.
    return new TdsSession(socket, (50 + connectionId) % 0x10000, this.credentials, this.tls, () => this.encrypted++);
  }
}

// ---------------------------------------------------------------------------------------------
// Protocol constants (MS-TDS 2.2)

const HEADER_LENGTH = 8;
const STATUS_EOM = 0x01;
const STATUS_IGNORE = 0x02;

const PACKET = {
  SQL_BATCH: 0x01,
  RPC_REQUEST: 0x03,
  TABULAR_RESULT: 0x04,
  ATTENTION: 0x06,
  TRANSACTION_MANAGER: 0x0e,
  LOGIN7: 0x10,
  PRELOGIN: 0x12,
} as const;

const TOKEN = {
  COLMETADATA: 0x81,
  RETURNSTATUS: 0x79,
  ERROR: 0xaa,
  LOGINACK: 0xad,
  ROW: 0xd1,
  ENVCHANGE: 0xe3,
  DONE: 0xfd,
  DONEPROC: 0xfe,
  DONEINPROC: 0xff,
} as const;

const DONE_STATUS = { FINAL: 0x00, ERROR: 0x02, COUNT: 0x10, ATTN: 0x20 } as const;

/** PRELOGIN ENCRYPTION values (MS-TDS 2.2.6.5). */
const ENCRYPT = { OFF: 0x00, ON: 0x01, NOT_SUP: 0x02, REQ: 0x03 } as const;
/** The first byte of a TLS handshake record: a TDS 8 (strict) client starts with TLS, not PRELOGIN. */
const TLS_HANDSHAKE_RECORD = 0x16;

const ENV = { DATABASE: 1, LANGUAGE: 2, PACKET_SIZE: 4, COLLATION: 7, BEGIN_TXN: 8, COMMIT_TXN: 9, ROLLBACK_TXN: 10 } as const;

const TM = { BEGIN: 5, COMMIT: 7, ROLLBACK: 8 } as const;

const TDS_7_4 = 0x74000004;
const SP_EXECUTESQL = 10;
const TYPE_INT4 = 0x38;
const TYPE_NVARCHAR = 0xe7;
// SQL_Latin1_General_CP1_CI_AS, the collation tedious uses for nvarchar parameters.
const COLLATION = Buffer.from([0x09, 0x04, 0xd0, 0x00, 0x34]);
const SERVER_NAME = 'tds-test-server';

// ---------------------------------------------------------------------------------------------
// Encoding helpers

const u8 = (n: number): Buffer => Buffer.from([n & 0xff]);

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function i32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(n);
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

/** B_VARCHAR: one-byte character count, UCS-2 text. */
function bVarChar(text: string): Buffer {
  const data = Buffer.from(text, 'ucs2');
  return Buffer.concat([u8(data.length / 2), data]);
}

/** US_VARCHAR: two-byte character count, UCS-2 text. */
function usVarChar(text: string): Buffer {
  const data = Buffer.from(text, 'ucs2');
  return Buffer.concat([u16(data.length / 2), data]);
}

const bVarByte = (data: Buffer): Buffer => Buffer.concat([u8(data.length), data]);

/** A token whose body is preceded by a two-byte length. */
const sizedToken = (type: number, body: Buffer): Buffer => Buffer.concat([u8(type), u16(body.length), body]);

// ---------------------------------------------------------------------------------------------
// Tokens

const envChange = (type: number, newValue: Buffer, oldValue: Buffer): Buffer =>
  sizedToken(TOKEN.ENVCHANGE, Buffer.concat([u8(type), newValue, oldValue]));

function done(token: number, status: number, rowCount = 0): Buffer {
  return Buffer.concat([u8(token), u16(status), u16(0), u64(rowCount)]);
}

function errorToken(number: number, message: string, severity = 16, state = 1): Buffer {
  const body = Buffer.concat([u32(number), u8(state), u8(severity), usVarChar(message), bVarChar(SERVER_NAME), bVarChar(''), u32(1)]);
  return sizedToken(TOKEN.ERROR, body);
}

function loginAck(): Buffer {
  const version = Buffer.alloc(4);
  version.writeUInt32BE(TDS_7_4);
  // Interface 1 = SQL_TSQL; program version 16.0.4000 (SQL Server 2022 shaped).
  const body = Buffer.concat([u8(1), version, bVarChar('Microsoft SQL Server'), Buffer.from([16, 0, 0x0f, 0xa0])]);
  return sizedToken(TOKEN.LOGINACK, body);
}

/** COLMETADATA + ROW for one non-nullable INT column. */
function intResult(columnName: string, value: number): Buffer {
  const column = Buffer.concat([u32(0), u16(0), u8(TYPE_INT4), bVarChar(columnName)]);
  return Buffer.concat([u8(TOKEN.COLMETADATA), u16(1), column, u8(TOKEN.ROW), i32(value)]);
}

// ---------------------------------------------------------------------------------------------
// Request decoding

/** LOGIN7 fields we care about (MS-TDS 2.2.6.4); offsets are into the fixed-length header. */
function decodeLogin7(data: Buffer): { user: string; password: string; database: string; packetSize: number } {
  const field = (offsetPos: number): Buffer => {
    const offset = data.readUInt16LE(offsetPos);
    const chars = data.readUInt16LE(offsetPos + 2);
    return data.subarray(offset, offset + chars * 2);
  };
  // Undo the client obfuscation: XOR with 0xA5, then swap the nibbles back.
  const password = Buffer.from(field(44).map((b) => (((b ^ 0xa5) << 4) & 0xf0) | ((b ^ 0xa5) >> 4)));
  return {
    packetSize: data.readUInt32LE(8),
    user: field(40).toString('ucs2'),
    password: password.toString('ucs2'),
    database: field(68).toString('ucs2'),
  };
}

/** The ENCRYPTION option of a client's PRELOGIN (its option table: token, offset, length; 0xFF ends it). */
function preloginEncryption(data: Buffer): number | undefined {
  for (let pos = 0; pos + 5 <= data.length && data[pos] !== 0xff; pos += 5) {
    if (data[pos] !== 0x01) continue;
    const offset = data.readUInt16BE(pos + 1);
    return offset < data.length ? data[offset] : undefined;
  }
  return undefined;
}

/** Two connected in-memory streams: what one is written, the other reads (a TLS engine between TDS and the socket). */
function duplexPair(): [Duplex, Duplex] {
  const pair: Duplex[] = [];
  const end = (i: number) =>
    new Duplex({
      read: () => undefined,
      write(chunk: Buffer, _encoding, callback) {
        pair[1 - i].push(chunk);
        callback();
      },
      final(callback) {
        pair[1 - i].push(null);
        callback();
      },
    });
  pair.push(end(0), end(1));
  return [pair[0], pair[1]];
}

/** Skips ALL_HEADERS (TDS 7.2+), whose first DWORD is its own total length. */
function skipAllHeaders(data: Buffer): number {
  if (data.length < 4) return 0;
  const length = data.readUInt32LE(0);
  return length >= 4 && length <= data.length ? length : 0;
}

/** Reads an NVARCHAR parameter value (sized or PLP) starting at its TYPE_INFO byte. */
function readNVarChar(data: Buffer, start: number): string {
  let pos = start + 1;
  const maxLength = data.readUInt16LE(pos);
  pos += 2 + COLLATION.length;
  if (maxLength !== 0xffff) {
    const length = data.readUInt16LE(pos);
    return length === 0xffff ? '' : data.toString('ucs2', pos + 2, pos + 2 + length);
  }
  // nvarchar(max) is sent as PLP: 8-byte total length, then length-prefixed chunks ending in 0.
  pos += 8;
  const chunks: Buffer[] = [];
  for (let size = data.readUInt32LE(pos); size > 0; size = data.readUInt32LE(pos)) {
    chunks.push(data.subarray(pos + 4, pos + 4 + size));
    pos += 4 + size;
  }
  return Buffer.concat(chunks).toString('ucs2');
}

/** Returns the SQL text of an sp_executesql RPC, or undefined for any other procedure. */
function decodeRpcStatement(data: Buffer): string | undefined {
  let pos = skipAllHeaders(data);
  let isExecuteSql: boolean;
  if (data.readUInt16LE(pos) === 0xffff) {
    isExecuteSql = data.readUInt16LE(pos + 2) === SP_EXECUTESQL;
    pos += 4;
  } else {
    const chars = data.readUInt16LE(pos);
    isExecuteSql = data.toString('ucs2', pos + 2, pos + 2 + chars * 2).toLowerCase() === 'sp_executesql';
    pos += 2 + chars * 2;
  }
  if (!isExecuteSql) return undefined;
  pos += 2; // option flags
  pos += 1 + data.readUInt8(pos) * 2; // parameter name (@statement)
  pos += 1; // status flags
  return data.readUInt8(pos) === TYPE_NVARCHAR ? readNVarChar(data, pos) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Statement "execution"

type Outcome =
  | { kind: 'row'; column: string; value: number }
  | { kind: 'none' }
  | { kind: 'error'; number: number; message: string }
  | { kind: 'delay'; ms: number };

/**
 * The whole SQL dialect: SELECT → one INT row (literal value or 1, column from `AS name`),
 * `WAITFOR DELAY 'hh:mm:ss[.fff]'` → answer late, `THROW n, 'msg', s` → error, anything else → no rows.
 */
function runStatement(sql: string): Outcome {
  const text = sql.trim().replace(/;\s*$/, '');
  const delay = /^waitfor\s+delay\s+'(\d+):(\d+):(\d+(?:\.\d+)?)'$/i.exec(text);
  if (delay) {
    const [, h, m, s] = delay;
    return { kind: 'delay', ms: Math.round(((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000) };
  }
  const thrown = /^throw\s+(\d+)\s*,\s*'((?:[^']|'')*)'/i.exec(text);
  if (thrown) return { kind: 'error', number: Number(thrown[1]), message: thrown[2].replace(/''/g, "'") };
  const select = /^select\s+(.+?)(?:\s+as\s+(?:\[([^\]]+)\]|"([^"]+)"|(\w+)))?$/is.exec(text);
  if (select) {
    const literal = Number(select[1]);
    const value = Number.isInteger(literal) && Math.abs(literal) <= 0x7fffffff ? literal : 1;
    return { kind: 'row', column: select[2] ?? select[3] ?? select[4] ?? '', value };
  }
  return { kind: 'none' };
}

// ---------------------------------------------------------------------------------------------
// Session

type RequestKind = 'batch' | 'rpc';

class TdsSession implements WireSession {
  private buffered = Buffer.alloc(0);
  private messageParts: Buffer[] = [];
  private packetSize = 4096;
  private loggedIn = false;
  private nextTxnId = 1;
  /** A WAITFOR still running; ATTENTION cancels it. */
  private pending: { timer: NodeJS.Timeout; kind: RequestKind } | undefined;
  /** Where TDS goes out: the socket, or the TLS engine once the connection is encrypted. */
  private out: { write(data: Buffer): unknown };
  /** Raw socket bytes go to the TDS parser, or (encrypted) into the TLS engine. */
  private inbound: (chunk: Buffer) => void = (chunk) => this.onFirstData(chunk);
  /** While TLS is negotiated inside PRELOGIN packets: feeds the client's handshake bytes to the engine. */
  private handshake?: (data: Buffer) => void;
  private tlsSocket?: TLSSocket;

  constructor(
    private readonly socket: Socket,
    private readonly spid: number,
    private readonly credentials: { user: string; password: string },
    private readonly tls: { mode: 'offered' | 'required'; context: SecureContext } | undefined,
    private readonly onSecure: () => void,
  ) {
    this.out = socket;
    socket.on('data', (chunk: Buffer) => this.inbound(chunk));
  }

  dispose(): void {
    this.clearPending();
    this.tlsSocket?.destroy();
  }

  /** TDS 8 (strict) clients open with a TLS handshake; everyone else with PRELOGIN. */
  private onFirstData(chunk: Buffer): void {
    if (this.tls && chunk[0] === TLS_HANDSHAKE_RECORD) {
      const engine = this.startTls(true);
      this.inbound = (c) => engine.write(c);
      return this.inbound(chunk);
    }
    this.inbound = (c) => this.onData(c);
    this.onData(chunk);
  }

  /**
   * A server-side TLS engine between the TDS parser and the socket. In TDS 7 the handshake travels inside PRELOGIN
   * packets, one server message per client message; after it (and from the start in TDS 8) TLS records go raw on the
   * socket with TDS inside.
   */
  private startTls(strict: boolean): Duplex {
    const [inner, engine] = duplexPair();
    const tlsSocket = new TLSSocket(inner, { isServer: true, secureContext: this.tls!.context, ...(strict ? { ALPNProtocols: ['tds/8.0'] } : {}) });
    this.tlsSocket = tlsSocket;
    tlsSocket.on('error', () => this.socket.destroy());
    tlsSocket.on('data', (cleartext: Buffer) => this.onData(cleartext));
    let flight: Buffer[] | undefined = strict ? undefined : [];
    // Each client handshake message gets exactly one PRELOGIN message back; after the last one, TLS goes raw.
    let answerOwed = false;
    let secured = false;
    const goRaw = () => {
      flight = undefined;
      this.handshake = undefined;
      this.inbound = (c) => engine.write(c);
      this.out = tlsSocket;
    };
    const flush = () => {
      if (!flight?.length) return;
      this.sendMessage(PACKET.PRELOGIN, Buffer.concat(flight));
      flight = [];
      answerOwed = false;
      if (secured) goRaw();
    };
    engine.on('data', (records: Buffer) => {
      if (!flight) return void (!this.socket.destroyed && this.socket.write(records));
      // What the engine answers to one client flight comes in one tick: sent as one PRELOGIN message.
      if (flight.push(records) === 1) setImmediate(flush);
    });
    // The engine may say `secure` before or after it has written its last flight.
    tlsSocket.once('secure', () => {
      this.onSecure();
      secured = true;
      if (flight?.length) flush();
      else if (!answerOwed) goRaw();
    });
    if (!strict) {
      this.handshake = (data) => {
        answerOwed = true;
        engine.write(data);
      };
    }
    return engine;
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= HEADER_LENGTH) {
      const length = this.buffered.readUInt16BE(2);
      if (length < HEADER_LENGTH) return void this.socket.destroy();
      if (this.buffered.length < length) return;
      const packet = this.buffered.subarray(0, length);
      this.buffered = this.buffered.subarray(length);
      this.messageParts.push(packet.subarray(HEADER_LENGTH));
      const status = packet[1];
      if (status & STATUS_EOM) {
        const data = Buffer.concat(this.messageParts);
        this.messageParts = [];
        try {
          this.onMessage(packet[0], data, (status & STATUS_IGNORE) !== 0);
        } catch {
          // Undecodable request (a buffer read out of range): drop the client rather than crash the test run.
          return void this.socket.destroy();
        }
      }
    }
  }

  private onMessage(type: number, data: Buffer, ignored: boolean): void {
    if (this.socket.destroyed) return;
    if (type === PACKET.PRELOGIN && this.handshake) return this.handshake(data);
    if (type === PACKET.PRELOGIN) return this.onPrelogin(data);
    if (type === PACKET.LOGIN7) return this.onLogin(data);
    if (!this.loggedIn) return void this.socket.destroy();
    if (type === PACKET.ATTENTION) return this.onAttention();
    // A request the client cancelled while sending: acknowledge it without running it.
    if (ignored) return this.send([done(TOKEN.DONE, DONE_STATUS.FINAL)]);
    if (type === PACKET.SQL_BATCH) return this.execute('batch', data.toString('ucs2', skipAllHeaders(data)));
    if (type === PACKET.RPC_REQUEST) return this.execute('rpc', decodeRpcStatement(data));
    if (type === PACKET.TRANSACTION_MANAGER) return this.onTransactionManager(data);
    this.socket.destroy();
  }

  private onPrelogin(data: Buffer): void {
    const asked = preloginEncryption(data);
    const wantsTls = asked === ENCRYPT.ON || asked === ENCRYPT.REQ;
    // Without TLS: NOT_SUP, so a client that asked for it goes on in plain text (tedious does).
    const encryption = !this.tls ? ENCRYPT.NOT_SUP : wantsTls ? ENCRYPT.ON : this.tls.mode === 'required' ? ENCRYPT.REQ : ENCRYPT.NOT_SUP;
    const options: Array<[token: number, data: Buffer]> = [
      [0x00, Buffer.from([16, 0, 0x0f, 0xa0, 0, 0])], // VERSION 16.0.4000.0
      [0x01, u8(encryption)], // ENCRYPTION
      [0x02, u8(0)], // INSTOPT
      [0x03, Buffer.alloc(0)], // THREADID (servers send it empty)
      [0x04, u8(0)], // MARS off
    ];
    let dataOffset = options.length * 5 + 1;
    const table: Buffer[] = [];
    for (const [token, data] of options) {
      const entry = Buffer.alloc(5);
      entry.writeUInt8(token, 0);
      entry.writeUInt16BE(dataOffset, 1);
      entry.writeUInt16BE(data.length, 3);
      table.push(entry);
      dataOffset += data.length;
    }
    this.send([...table, u8(0xff), ...options.map(([, data]) => data)]);
    if (encryption === ENCRYPT.ON && !this.tlsSocket) this.startTls(false);
  }

  private onLogin(data: Buffer): void {
    const login = decodeLogin7(data);
    if (login.user !== this.credentials.user || login.password !== this.credentials.password) {
      // Like SQL Server: state 1 hides the reason, and the connection is dropped after the error.
      this.send([errorToken(18456, `Login failed for user '${login.user}'.`, 14), done(TOKEN.DONE, DONE_STATUS.ERROR)]);
      this.socket.end();
      return;
    }
    const database = login.database || 'master';
    const packetSize = login.packetSize >= 512 && login.packetSize <= 32767 ? login.packetSize : 4096;
    this.loggedIn = true;
    this.send([
      envChange(ENV.DATABASE, bVarChar(database), bVarChar('master')),
      envChange(ENV.COLLATION, bVarByte(COLLATION), bVarByte(Buffer.alloc(0))),
      envChange(ENV.LANGUAGE, bVarChar('us_english'), bVarChar('')),
      loginAck(),
      envChange(ENV.PACKET_SIZE, bVarChar(String(packetSize)), bVarChar(String(this.packetSize))),
      done(TOKEN.DONE, DONE_STATUS.FINAL),
    ]);
    this.packetSize = packetSize;
  }

  private execute(kind: RequestKind, sql: string | undefined): void {
    const outcome: Outcome = sql === undefined ? { kind: 'none' } : runStatement(sql);
    if (outcome.kind !== 'delay') return this.send(this.respond(kind, outcome));
    const timer = setTimeout(() => {
      this.pending = undefined;
      this.send(this.respond(kind, { kind: 'none' }));
    }, outcome.ms);
    timer.unref();
    this.pending = { timer, kind };
  }

  /** Token stream for a finished statement, shaped like SQL Server's batch or RPC answers. */
  private respond(kind: RequestKind, outcome: Exclude<Outcome, { kind: 'delay' }>): Buffer[] {
    const tokens: Buffer[] = [];
    let status: number = DONE_STATUS.FINAL;
    let rows = 0;
    if (outcome.kind === 'row') {
      tokens.push(intResult(outcome.column, outcome.value));
      status = DONE_STATUS.COUNT;
      rows = 1;
    } else if (outcome.kind === 'error') {
      tokens.push(errorToken(outcome.number, outcome.message));
      status = DONE_STATUS.ERROR;
    }
    if (kind === 'batch') return [...tokens, done(TOKEN.DONE, status, rows)];
    return [...tokens, done(TOKEN.DONEINPROC, status, rows), u8(TOKEN.RETURNSTATUS), i32(0), done(TOKEN.DONEPROC, status & DONE_STATUS.ERROR)];
  }

  /**
   * tedious expects the cancelled request's own (empty) answer first, then a separate
   * message carrying DONE with the ATTN bit (connection.js SENT_ATTENTION state).
   */
  private onAttention(): void {
    const pending = this.pending;
    if (pending) {
      this.clearPending();
      this.send([done(pending.kind === 'batch' ? TOKEN.DONE : TOKEN.DONEPROC, DONE_STATUS.FINAL)]);
    }
    this.send([done(TOKEN.DONE, DONE_STATUS.ATTN)]);
  }

  /** Transaction Manager requests (tedious' beginTransaction/commitTransaction/rollbackTransaction). */
  private onTransactionManager(data: Buffer): void {
    const request = data.readUInt16LE(skipAllHeaders(data));
    const descriptor = Buffer.alloc(8);
    const tokens: Buffer[] = [];
    if (request === TM.BEGIN) {
      descriptor.writeBigUInt64LE(BigInt(this.nextTxnId++));
      tokens.push(envChange(ENV.BEGIN_TXN, bVarByte(descriptor), bVarByte(Buffer.alloc(0))));
    } else if (request === TM.COMMIT || request === TM.ROLLBACK) {
      const env = request === TM.COMMIT ? ENV.COMMIT_TXN : ENV.ROLLBACK_TXN;
      tokens.push(envChange(env, bVarByte(Buffer.alloc(0)), bVarByte(descriptor)));
    }
    this.send([...tokens, done(TOKEN.DONE, DONE_STATUS.FINAL)]);
  }

  /** Writes one TABULAR_RESULT message, split into packets no larger than the negotiated size. */
  private send(parts: Buffer[]): void {
    this.sendMessage(PACKET.TABULAR_RESULT, Buffer.concat(parts));
  }

  private sendMessage(type: number, payload: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    // The TLS handshake goes straight to the socket (inside PRELOGIN packets); TDS after it through the engine.
    const out = type === PACKET.PRELOGIN && this.handshake ? this.socket : this.out;
    const chunkSize = this.packetSize - HEADER_LENGTH;
    let packetId = 1;
    for (let offset = 0; offset === 0 || offset < payload.length; offset += chunkSize) {
      const chunk = payload.subarray(offset, offset + chunkSize);
      const last = offset + chunkSize >= payload.length;
      const header = Buffer.alloc(HEADER_LENGTH);
      header.writeUInt8(type, 0);
      header.writeUInt8(last ? STATUS_EOM : 0, 1);
      header.writeUInt16BE(HEADER_LENGTH + chunk.length, 2);
      header.writeUInt16BE(this.spid, 4);
      header.writeUInt8(packetId++ % 256, 6);
      out.write(Buffer.concat([header, chunk]));
    }
  }

  private clearPending(): void {
    if (this.pending) clearTimeout(this.pending.timer);
    this.pending = undefined;
  }
}
