import { PoolerRefusedError } from '../../errors';

type Method = (this: unknown, ...args: unknown[]) => unknown;

/**
 * Statements that need the server session to outlive their transaction. PgBouncer in transaction mode hands the server
 * connection to another client after each transaction, so their effect lands on a stranger (a SET, a lock) or is lost
 * (notifications, a prepared statement), and named prepared statements collide ("already exists").
 */
const SESSION_BOUND: ReadonlyArray<{ pattern: RegExp; what: string; instead: string }> = [
  { pattern: /^\s*(UN)?LISTEN\b/i, what: 'LISTEN / UNLISTEN', instead: 'listen on a connection to the server itself (without PgBouncer)' },
  {
    pattern: /^\s*(SET\s+(?!LOCAL\b|TRANSACTION\b|CONSTRAINTS\b)|RESET\b)/i,
    what: 'a session SET / RESET',
    instead: 'use SET LOCAL inside a transaction, or set it for the role or database on the server',
  },
  { pattern: /^\s*PREPARE\s+(?!TRANSACTION\b)/i, what: 'PREPARE', instead: 'send the statement with its parameters unnamed' },
  {
    pattern: /\bpg_(try_)?advisory_(un)?lock(_shared|_all)?\s*\(/i,
    what: 'a session-level advisory lock',
    instead: 'use pg_advisory_xact_lock / pg_try_advisory_xact_lock inside a transaction',
  },
];

/**
 * Wraps a lent native client's `query` (callback or promise form) so it refuses, with a `PoolerRefusedError`, what
 * transaction pooling breaks. Checked on the statement's text: a statement built another way (a function of the
 * user's that runs SET) is not seen, which the README says.
 */
export function refuseSessionStatements(connectionName: string): (original: Method) => Method {
  return (original) =>
    function guarded(this: unknown, ...args: unknown[]): unknown {
      const refusal = refusalOf(connectionName, args[0]);
      if (!refusal) return original(...args);
      const last = args[args.length - 1];
      if (typeof last === 'function') {
        process.nextTick(() => (last as Method)(refusal));
        return undefined;
      }
      return Promise.reject(refusal);
    };
}

function refusalOf(connectionName: string, first: unknown): PoolerRefusedError | undefined {
  const query = first as { name?: unknown; text?: unknown } | string | undefined;
  if (typeof query === 'object' && typeof query?.name === 'string' && query.name !== '') {
    return refusal(connectionName, `the named prepared statement "${query.name}"`, 'send it unnamed (drop the name; its parameters stay bound)');
  }
  const text = typeof query === 'string' ? query : typeof query?.text === 'string' ? query.text : '';
  const bound = SESSION_BOUND.find(({ pattern }) => pattern.test(text));
  return bound ? refusal(connectionName, bound.what, bound.instead) : undefined;
}

function refusal(connectionName: string, what: string, instead: string): PoolerRefusedError {
  return new PoolerRefusedError(
    connectionName,
    'pgbouncer',
    `${what} needs the server session to outlive the transaction, which PgBouncer's transaction pooling does not give ` +
      '(the server connection goes to another client after each transaction)',
    `Instead: ${instead}.`,
  );
}
