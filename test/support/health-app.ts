import 'reflect-metadata';
import { type INestApplication, type LoggerService, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { DbManager, type DbManagerConfigInput, DbManagerModule } from '../../lib';
import { HealthController } from '../../sample-app/src/health.controller';

/**
 * A tiny Nest app for fault tests: DbManagerModule.forRoot + TerminusModule + the sample
 * app's, listening on a free port. Startup errors are thrown (not process.abort()), so tests can assert on them.
 */

// The sample app's own health controller: tests exercise what users copy.
export { HealthController };

/** One log line the app (and the library, through Nest's Logger) wrote. */
export interface LogLine {
  level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';
  context: string;
  message: string;
  at: number;
}

/** A Nest logger that records instead of printing, so tests can assert what was logged and how often. */
export class LogCapture implements LoggerService {
  readonly lines: LogLine[] = [];
  log(message: unknown, context?: string): void {
    this.add('log', message, context);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.add('error', message, typeof rest.at(-1) === 'string' ? (rest.at(-1) as string) : undefined);
  }
  warn(message: unknown, context?: string): void {
    this.add('warn', message, context);
  }
  debug(message: unknown, context?: string): void {
    this.add('debug', message, context);
  }
  verbose(message: unknown, context?: string): void {
    this.add('verbose', message, context);
  }
  fatal(message: unknown, context?: string): void {
    this.add('fatal', message, context);
  }
  private readonly waiters = new Set<() => void>();
  /** Lines whose context and message match. */
  matching(context: string | RegExp, message: RegExp): LogLine[] {
    return this.lines.filter((l) => (typeof context === 'string' ? l.context === context : context.test(l.context)) && message.test(l.message));
  }
  /**
   * Resolves as soon as `count` lines match — in the microtask after the line that makes it so is written, before any
   * timer can fire, so a test can act between a retry's failure and its next attempt however loaded the machine is.
   */
  logged(context: string | RegExp, message: RegExp, count = 1, timeoutMs = 5_000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.matching(context, message).length < count) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${count} log line(s) matching ${String(message)} not written within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }
  private add(level: LogLine['level'], message: unknown, context?: string): void {
    this.lines.push({ level, context: context ?? '', message: String(message), at: performance.now() });
    for (const check of [...this.waiters]) check();
  }
}

/** The answer of one HTTP request, with how long it took. */
export interface HttpAnswer<T = HealthBody> {
  status: number;
  body: T;
  ms: number;
}

/** Terminus' response body. */
export interface HealthBody {
  status: string;
  info?: Record<string, Record<string, unknown>>;
  error?: Record<string, Record<string, unknown>>;
  details: Record<string, { status: string; type?: string; critical?: boolean; responseTimeMs?: number; message?: string }>;
}

export interface HealthApp {
  readonly app: INestApplication;
  readonly manager: DbManager;
  readonly baseUrl: string;
  readonly logs: LogCapture;
  /** GET a path (e.g. `/health`), parsed as JSON. */
  get<T = HealthBody>(path: string, timeoutMs?: number): Promise<HttpAnswer<T>>;
  close(): Promise<void>;
}

/** Boots the app on 127.0.0.1 and a free port. Rejects with the library's startup error when a critical connection fails. */
export async function startHealthApp(config: DbManagerConfigInput, logs = new LogCapture()): Promise<HealthApp> {
  @Module({ imports: [DbManagerModule.forRoot(config), TerminusModule], controllers: [HealthController] })
  class HealthTestModule {}

  const app = await NestFactory.create(HealthTestModule, { logger: logs, abortOnError: false });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  const baseUrl = `http://127.0.0.1:${address.port}`;
  let closing: Promise<void> | undefined;
  return {
    app,
    manager: app.get(DbManager),
    baseUrl,
    logs,
    async get<T>(path: string, timeoutMs = 15_000): Promise<HttpAnswer<T>> {
      const started = performance.now();
      const response = await fetch(baseUrl + path, { signal: AbortSignal.timeout(timeoutMs) });
      const body = (await response.json()) as T;
      return { status: response.status, body, ms: Math.round(performance.now() - started) };
    },
    close: () => (closing ??= app.close()),
  };
}
