import { Controller, Get, Inject, type Type } from '@nestjs/common';
import { HealthCheck, HealthCheckService, type HealthIndicatorResult } from '@nestjs/terminus';

/** What the controller needs of the library's indicator class (today's, or an earlier build's). */
export type HealthIndicatorClass = Type<{ checkAll(): Promise<HealthIndicatorResult> }>;

/**
 * The /health a user of our module writes: Terminus over DbHealthIndicator.checkAll(), on the indicator class of the
 * library build the caller boots (injected by that class: decorator metadata would name today's). One definition
 * shared by the bench apps (support/apps.ts) and the tenants child, which compiles alone (tsconfig.tenants.json) and
 * loads nothing else of support/ so that its RSS baseline stays the app a user would run.
 */
export function oursHealthController(indicator: HealthIndicatorClass): Type<unknown> {
  @Controller('health')
  class OursHealthController {
    constructor(
      @Inject(HealthCheckService) private readonly health: HealthCheckService,
      @Inject(indicator) private readonly db: InstanceType<HealthIndicatorClass>,
    ) {}

    @Get()
    @HealthCheck()
    check() {
      return this.health.check([() => this.db.checkAll()]);
    }
  }
  return OursHealthController;
}
