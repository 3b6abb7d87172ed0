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

/**
 * A timer that ends early when `signal` aborts. It keeps the process alive, as a wait that a caller awaits (startup,
 * `add()`, shutdown) must, or Node exits 0 in the middle of it; `background: true` (the health loop's own waits) does not.
 */
export function sleep(ms: number, signal?: AbortSignal, options: { background?: boolean } = {}): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const timer = setTimeout(done, ms);
    if (options.background) timer.unref();
    const stopListening = signal ? whenAborted(signal, done) : undefined;
    function done() {
      clearTimeout(timer);
      stopListening?.();
      resolve();
    }
  });
}

/**
 * Calls `fn` once when `signal` aborts; the returned function stops listening. It listens on a signal of its own
 * (`AbortSignal.any` adds no listener to its source): waits on one shared signal — every connection connecting at
 * startup, every reconnect loop of the health loop — would otherwise hang a listener each on it, and Node 20 warns of
 * a leak past 10.
 */
function whenAborted(signal: AbortSignal, fn: () => void): () => void {
  const own = AbortSignal.any([signal]);
  own.addEventListener('abort', fn, { once: true });
  return () => own.removeEventListener('abort', fn);
}

/** retryWithBackoff's rejection when its signal aborted: how far it got, and the last attempt's error if one failed. */
export class RetryAbortedError extends Error {
  override readonly name = 'RetryAbortedError';
  constructor(
    readonly attemptsMade: number,
    /** The error of the last attempt that ended before the abort (undefined if none did). */
    readonly lastError: unknown,
    /** The signal's reason. */
    readonly reason: unknown,
  ) {
    super('retries were aborted');
  }
}

/** retryWithBackoff's rejection when the attempts are used up or the error is permanent: the last error, and how many were made. */
export class RetryGaveUpError extends Error {
  override readonly name = 'RetryGaveUpError';
  constructor(
    readonly attemptsMade: number,
    readonly lastError: unknown,
  ) {
    super('retries gave up');
  }
}

/**
 * Runs `attempt` until it succeeds, the attempts are used up, or `isPermanent` says a retry cannot help: then rejects
 * with a `RetryGaveUpError`. When `signal` aborts — between attempts or during one, which is then left to its owner
 * to cancel — it rejects at once with a `RetryAbortedError`.
 */
export async function retryWithBackoff<T>(
  attempt: (index: number) => Promise<T>,
  policy: RetryPolicy,
  options: { isPermanent?: (error: unknown) => boolean; signal?: AbortSignal; onRetry?: (error: unknown, index: number, delayMs: number) => void } = {},
): Promise<T> {
  const { signal } = options;
  let lastError: unknown;
  for (let index = 0; ; index++) {
    if (signal?.aborted) throw new RetryAbortedError(index, lastError, signal.reason);
    try {
      return await untilAborted(attempt(index), signal);
    } catch (error) {
      if (error === ABORTED) throw new RetryAbortedError(index, lastError, signal!.reason);
      lastError = error;
      if (index + 1 >= policy.attempts || options.isPermanent?.(error)) throw new RetryGaveUpError(index + 1, error);
      if (signal?.aborted) throw new RetryAbortedError(index + 1, lastError, signal.reason);
      const delay = backoffDelay(index, policy);
      options.onRetry?.(error, index, delay);
      await sleep(delay, signal);
    }
  }
}

const ABORTED = Symbol('aborted');

/** `work`, or a rejection with ABORTED as soon as `signal` aborts (work's own outcome is then ignored). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const stopListening = whenAborted(signal, () => reject(ABORTED));
    work.then(resolve, reject).finally(stopListening);
  });
}
