import { BadRequestException, Body, Controller, Get, Param, Post } from '@nestjs/common';
import { DbManager } from 'nestjs-dbmanager';
import { type AccessPath, readThrough } from './access-paths';
import { NotesService } from './notes.service';
import { ReportsService } from './reports.service';

@Controller()
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

  /** Reads through one access path (em, knex or native) of one connection. */
  @Get('connections/:name/:path')
  async read(@Param('name') name: string, @Param('path') path: string) {
    if (!['em', 'knex', 'native'].includes(path)) throw new BadRequestException('path must be em, knex or native');
    const connection = this.manager.get(name);
    return { connection: name, type: connection.type, path, result: await readThrough(connection, path as AccessPath) };
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
