import type { Logger } from '@nestjs/common';
import type { DriverSession } from '../drivers/driver';
import { errorMessage } from './redact';

/** What close() hands over with the session. */
export interface DrainOptions {
  /** How long lent-out connections may take to come back (shutdown_timeout's share; 0 = no wait). */
  drainMs: number;
  /** When close() began (`performance.now()`), for the warning's figure. */
  startedAt: number;
  /** Takes the session away from the connection, which from then on refuses with ConnectionClosedError. */
  detach(): void;
  logger: Logger;
  /** Masks the connection's secrets in a log line. */
  redact(text: string): string;
}

/**
 * The end of a connection's pool at close(): connections lent out (in-flight queries, open transactions) get up to
 * `drainMs` to come back; what is still busy then is torn down, with a warning when callers' work was cut short.
 */
export async function drainAndClose(session: DriverSession, options: DrainOptions): Promise<void> {
  await drain(session, options.drainMs);
  const { pending } = session.gauges();
  // Detached before the teardown, so the queries it cuts short fail with ConnectionClosedError.
  options.detach();
  const torn = session.abort();
  // Only callers' work is worth a warning; a connect under way is torn down silently.
  if (torn.inUse || pending) {
    const waiting = pending ? `, ${pending} caller(s) still waiting for one` : '';
    options.logger.warn(
      `${torn.inUse} connection(s) still busy after ${Math.round(performance.now() - options.startedAt)} ms (shutdown_timeout)${waiting}: ` +
        'torn down, their queries fail',
    );
  }
  await session.close().catch((error) => options.logger.warn(`closing the pool failed: ${options.redact(errorMessage(error))}`));
}

/** Waits until no pooled connection is lent out or waited for, for at most `ms`. */
async function drain(session: DriverSession, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  const busy = () => {
    const gauges = session.gauges();
    return gauges.inUse + gauges.pending > 0;
  };
  while (busy()) {
    const left = deadline - performance.now();
    if (left <= 0) return;
    // Keeps the process alive: close() awaits it.
    await new Promise((resolve) => setTimeout(resolve, Math.min(DRAIN_POLL_MS, left)));
  }
}

/** How often close() looks whether lent-out connections came back. */
const DRAIN_POLL_MS = 10;
