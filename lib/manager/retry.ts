/** Retry settings (the manager's `retry_*` fields). */
export interface RetryPolicy {
  /** Total attempts, at least 1. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Exponential backoff with full jitter: a random delay up to min(max, base × 2^attempt). */
export function backoffDelay(attempt: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** A timer that does not keep the process alive and ends early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    timer.unref();
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

/**
 * Runs `attempt` until it succeeds, the attempts are used up, `isPermanent` says a retry cannot help, or `signal`
 * aborts. Rethrows the last error; `attemptsMade` on it says how many were made.
 */
export async function retryWithBackoff<T>(
  attempt: (index: number) => Promise<T>,
  policy: RetryPolicy,
  options: { isPermanent?: (error: unknown) => boolean; signal?: AbortSignal; onRetry?: (error: unknown, index: number, delayMs: number) => void } = {},
): Promise<T> {
  for (let index = 0; ; index++) {
    try {
      return await attempt(index);
    } catch (error) {
      const last = index + 1 >= policy.attempts || options.isPermanent?.(error) || options.signal?.aborted;
      if (last) throw Object.assign(error instanceof Error ? error : new Error(String(error)), { attemptsMade: index + 1 });
      const delay = backoffDelay(index, policy);
      options.onRetry?.(error, index, delay);
      await sleep(delay, options.signal);
    }
  }
}
