import { Controller, Get, Param } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { DbHealthIndicator } from 'nestjs-dbmanager';

/**
 * Health for people and for orchestrators: every connection live (503 when a critical one is down), one by name,
 * liveness (no database) and readiness (critical connections only).
 */
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

  // live and ready are declared before :name, which would otherwise take them for connection names.

  /** Liveness: the process answers HTTP. No database: a restart would not bring one back. */
  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([]);
  }

  /** Readiness: send traffic only while every critical connection answers. */
  @Get('ready')
  @HealthCheck()
  ready() {
    return this.health.check([() => this.db.checkCritical()]);
  }

  @Get(':name')
  @HealthCheck()
  checkOne(@Param('name') name: string) {
    return this.health.check([() => this.db.pingCheck(name)]);
  }
}
