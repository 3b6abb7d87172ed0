import { Injectable } from '@nestjs/common';
import { type HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { DbManager } from '../manager/db-manager';

/** Options of a health check. */
export interface DbHealthCheckOptions {
  /** Bound on the ping in ms (default: the connection's health_check_timeout). */
  timeout?: number;
}

/** What each key of the result holds. */
export interface DbHealthDetails extends Record<string, unknown> {
  type: string;
  critical: boolean;
  responseTimeMs: number;
  /** No pool open on purpose (status `idle`): not pinged, counted up. */
  idle?: boolean;
  message?: string;
}

/**
 * Terminus indicator: pings connections live, each bounded by its own timeout. A down database is reported, never
 * thrown: `down` when critical (→ 503), `degraded` when `critical: false` (→ 200); an unknown name is `down`.
 * There is no liveness check here on purpose: a process whose database is down is not dead, and restarting it
 * would not bring the database back.
 */
@Injectable()
export class DbHealthIndicator {
  constructor(
    private readonly manager: DbManager,
    private readonly indicator: HealthIndicatorService,
  ) {}

  /** One connection, under its own name as key. */
  async pingCheck(name: string, options: DbHealthCheckOptions = {}): Promise<HealthIndicatorResult> {
    const check = this.indicator.check(name);
    if (!this.manager.has(name)) {
      return check.down({ type: 'unknown', critical: true, responseTimeMs: 0, message: `no connection named "${name}" is registered` });
    }
    const connection = this.manager.get(name);
    const health = await connection.healthCheck(options);
    const details: DbHealthDetails = { type: connection.type, critical: connection.critical, responseTimeMs: health.responseTimeMs };
    if (health.idle) details.idle = true;
    if (health.status === 'up') return check.up(details);
    details.message = health.error;
    return connection.critical ? check.down(details) : check.degraded(details);
  }

  /** Every connection in parallel, one key per connection. */
  checkAll(options: DbHealthCheckOptions = {}): Promise<HealthIndicatorResult> {
    return this.checkEach(this.manager.names(), options);
  }

  /**
   * Readiness: the critical connections only, in parallel, one key each. A `critical: false` connection is not
   * pinged, so one that is down leaves readiness passing.
   */
  checkCritical(options: DbHealthCheckOptions = {}): Promise<HealthIndicatorResult> {
    return this.checkEach(
      this.manager.names().filter((name) => this.manager.get(name).critical),
      options,
    );
  }

  private async checkEach(names: string[], options: DbHealthCheckOptions): Promise<HealthIndicatorResult> {
    const results = await Promise.all(names.map((name) => this.pingCheck(name, options)));
    return Object.assign({}, ...results) as HealthIndicatorResult;
  }
}
