import { rejectPendingAcquires, setCreateRetryDelay, type TarnPool } from '../adapters/tarn';
import { connectRetryDelay } from '../pool-timing';


/**
 * What a knex pool does when it cannot open a connection: it retries with backoff (doubling from 100 ms to 2 s,
 * jittered) instead of tarn's fixed 200 ms, while callers wait up to acquire_timeout; a permanent failure (wrong
 * password, unknown database) fails every waiting caller at once, as waiting would not help them. Remembers the last
 * failure since the last success, for the acquire timeout to name as its cause.
 */
export class CreateRetries {
  private failures = 0;
  private last: unknown;

  constructor(pool: TarnPool, isPermanent: (error: unknown) => boolean) {
    pool.on('createFail', (_eventId, error) => {
      this.failures++;
      this.last = error;
      setCreateRetryDelay(pool, connectRetryDelay(this.failures - 1));
      if (isPermanent(error)) rejectPendingAcquires(pool, error);
    });
    pool.on('createSuccess', () => {
      this.failures = 0;
      this.last = undefined;
    });
  }

  /** The last failed connect since the last success, if any. */
  lastFailure(): unknown {
    return this.last;
  }
}
