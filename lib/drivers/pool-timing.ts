/** Longest timer Node accepts; stands for "no limit" where a pool or driver option needs a number. */
export const FOREVER = 2_147_483_647;

const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2_000;

/**
 * How long a pool waits before retrying a connect that failed while callers wait for a connection: 100 ms after the
 * first failure, doubling up to 2 s, each wait jittered to ½–1× so that pools do not retry in step. `earlier` is the
 * number of failures in a row before this one.
 */
export function connectRetryDelay(earlier: number): number {
  const ceiling = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.min(earlier, 10));
  return Math.round(ceiling * (0.5 + Math.random() / 2));
}
