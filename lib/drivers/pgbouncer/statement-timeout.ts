import { cancelKeyOf, socketOf } from '../adapters/pg';
import { callObserved } from '../native-watch';
import { sendCancelRequest } from './cancel-request';

type Method = (this: unknown, ...args: unknown[]) => unknown;

/** How long a statement may still run after its cancel request before its connection is torn down (a lost cancel). */
const CANCEL_GRACE_MS = 2_000;

/**
 * query_timeout behind a pooler, which refuses the startup parameter statement_timeout: a timer per statement that
 * sends the protocol's cancel request when it fires. The server cancels the statement (57014) and the connection stays
 * usable, as with statement_timeout. Should the statement still run CANCEL_GRACE_MS later (the cancel was lost), the
 * connection's socket is destroyed: the statement fails and the pool replaces the connection. Wraps a pg client's
 * `query` (callback or promise form); submittables (cursors, streams) are not timed.
 */
export function statementTimeout(client: object, timeoutMs: number, connectionName: string): (original: Method) => Method {
  return (original) =>
    function timed(this: unknown, ...args: unknown[]): unknown {
      const first = args[0] as { submit?: unknown } | undefined;
      if (typeof first === 'object' && typeof first?.submit === 'function') return original(...args);
      return callObserved(original, args, startTimer(client, timeoutMs, connectionName));
    };
}

/** Starts one statement's timer; the returned function stops it, and names query_timeout in the error it caused. */
function startTimer(client: object, timeoutMs: number, connectionName: string): (error: unknown) => void {
  let outcome: 'running' | 'cancelled' | 'torn down' | 'no cancel key' = 'running';
  let grace: NodeJS.Timeout | undefined;
  const tearDown = (why: 'torn down' | 'no cancel key') => {
    outcome = why;
    socketOf(client)?.destroy();
  };
  const timer = setTimeout(() => {
    const key = cancelKeyOf(client);
    // Said once when the pool opened (postgres.ts): this pg version keeps no cancel key.
    if (!key) return tearDown('no cancel key');
    outcome = 'cancelled';
    grace = setTimeout(() => tearDown('torn down'), CANCEL_GRACE_MS);
    void sendCancelRequest(key);
  }, timeoutMs);
  return (error) => {
    clearTimeout(timer);
    clearTimeout(grace);
    if (outcome === 'running' || !(error instanceof Error)) return;
    const how =
      outcome === 'cancelled'
        ? 'was cancelled'
        : `its connection was torn down (${outcome === 'torn down' ? 'no answer to the cancel request' : 'no cancel key to send'})`;
    error.message = `Connection "${connectionName}": the statement ran longer than query_timeout (${timeoutMs} ms) and ${how} (${error.message})`;
  };
}
