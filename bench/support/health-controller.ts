import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { DbHealthIndicator } from '../../lib';

/**
 * The /health a user of our module writes: Terminus over DbHealthIndicator.checkAll(). One class shared by the bench
 * apps (support/apps.ts) and the tenants child, which compiles alone (tsconfig.tenants.json) and loads nothing else of
 * support/ so that its RSS baseline stays the app a user would run.
 */
@Controller('health')
export class OursHealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: DbHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.db.checkAll()]);
  }
}
