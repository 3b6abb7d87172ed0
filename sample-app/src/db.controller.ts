import { setTimeout as delay } from 'node:timers/promises';
import { BadRequestException, Body, Controller, Get, Param, Post, UseFilters } from '@nestjs/common';
import { DbManager } from 'nestjs-dbmanager';
import { ACCESS_PATHS, type AccessPath, readThrough } from './access-paths';
import { DbErrorsFilter } from './db-errors.filter';
import { NotesService } from './notes.service';
import { ReportsService } from './reports.service';

@Controller()
@UseFilters(DbErrorsFilter)
export class DbController {
  constructor(
    private readonly manager: DbManager,
    private readonly notes: NotesService,
    private readonly reports: ReportsService,
  ) {}

  /** Every connection with its type and status. */
  @Get('connections')
  connections() {
    return this.manager.all().map((c) => ({ name: c.name, type: c.type, status: c.status, tags: c.tags }));
  }

  /** Reads through one access path (em, kysely, knex or native) of one connection. */
  @Get('connections/:name/:path')
  async read(@Param('name') name: string, @Param('path') path: string) {
    if (!ACCESS_PATHS.includes(path as AccessPath)) throw new BadRequestException(`path must be ${ACCESS_PATHS.join(', ')}`);
    const connection = this.manager.get(name);
    return { connection: name, type: connection.type, path, result: await readThrough(connection, path as AccessPath) };
  }

  /** Holds one pooled connection for `ms` milliseconds (at most 10 s): to watch the pool saturate in /metrics. */
  @Get('connections/:name/hold/:ms')
  async hold(@Param('name') name: string, @Param('ms') ms: string) {
    const wait = Number(ms);
    if (!Number.isInteger(wait) || wait < 0 || wait > 10_000) throw new BadRequestException('ms must be an integer from 0 to 10000');
    const connection = this.manager.get(name);
    const started = performance.now();
    await connection.withNativeClient(() => delay(wait));
    return { connection: name, heldMs: wait, tookMs: Math.round(performance.now() - started) };
  }

  /** Pool figures and health of every connection. */
  @Get('stats')
  stats() {
    return this.manager.stats();
  }

  @Get('notes')
  list() {
    return this.notes.list();
  }

  @Post('notes')
  add(@Body() body: { text?: unknown }) {
    if (typeof body?.text !== 'string' || !body.text) throw new BadRequestException('text is required');
    return this.notes.add(body.text);
  }

  @Get('reports/summary')
  summary() {
    return this.reports.summary();
  }
}
