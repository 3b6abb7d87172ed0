import { Controller, Get, Param } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { DbHealthIndicator } from 'nestjs-dbmanager';

/** Live health of every connection (503 when a critical one is down), and of one by name. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly db: DbHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.db.checkAll()]);
  }

  @Get(':name')
  @HealthCheck()
  checkOne(@Param('name') name: string) {
    return this.health.check([() => this.db.pingCheck(name)]);
  }
}
