import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ConnectionFailedError, DbManager } from '../../lib';
import { LogCapture } from '../support/health-app';
import { pgbouncerBinaryOrSkipReason, startTestPgBouncer, type TestPgBouncer } from '../support/pgbouncer';

// A real PgBouncer (Debian's 1.18) in front of the run's PostgreSQL. A startup it refuses as a protocol violation
// (08P01) cannot get better by retrying: it must fail in one attempt, and say so.
const { reason: skipReason } = pgbouncerBinaryOrSkipReason();
if (skipReason) console.log(`[pgbouncer] skipped: ${skipReason}`);

describe.skipIf(skipReason !== undefined)('behind PgBouncer', () => {
  let bouncer: TestPgBouncer;

  beforeAll(async () => {
    bouncer = await startTestPgBouncer(inject('postgresUrl'));
  });
  afterAll(async () => {
    await bouncer?.close();
  });

  it("refuses our default statement_timeout startup parameter (08P01): fails in one attempt, saying a retry cannot fix it", async () => {
    const logs = new LogCapture();
    Logger.overrideLogger(logs);
    const started = performance.now();
    const error = await DbManager.create({
      retry_attempts: 3,
      retry_delay: '200ms',
      // query_timeout's default (30s) goes out as the startup parameter statement_timeout.
      connections: { pooled: { type: 'postgres', dsn: bouncer.url, connect_timeout: '2s' } },
    }).then(
      () => new Error('startup should have failed'),
      (e: unknown) => e as Error,
    );
    const ms = Math.round(performance.now() - started);
    console.log(`[pgbouncer] startup through PgBouncer with statement_timeout: failed in ${ms} ms: ${error.message}`);

    expect(error).toBeInstanceOf(ConnectionFailedError);
    const failure = error as ConnectionFailedError;
    expect(failure.attempts).toBe(1);
    expect(failure.retryable).toBe(false);
    expect(failure.message).toMatch(/failed after 1 attempt: unsupported startup parameter.*statement_timeout.*\(08P01\)\. A retry cannot fix this error/);
    expect((failure.cause as { code?: string }).code).toBe('08P01');
    expect(logs.matching('DbManager', /attempt \d+ failed/)).toEqual([]);
    expect(bouncer.log()).toMatch(/unsupported startup parameter/);
  });
});
