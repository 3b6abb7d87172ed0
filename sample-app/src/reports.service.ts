import { Injectable } from '@nestjs/common';
import { type DbConnection, InjectConnection } from 'nestjs-dbmanager';

/** Reads through the analytics connection's query builder. */
@Injectable()
export class ReportsService {
  constructor(@InjectConnection('analytics') private readonly analytics: DbConnection) {}

  async summary(): Promise<{ connection: string; type: string; tables: number }> {
    const knex = this.analytics.knex();
    const sql =
      this.analytics.type === 'sqlite'
        ? "select count(*) as tables from sqlite_master where type = 'table'"
        : "select count(*) as tables from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema')";
    const rows = await knex.raw(sql);
    const first = (Array.isArray(rows) ? rows[0] : rows.rows[0]) as { tables: number | string };
    return { connection: this.analytics.name, type: this.analytics.type, tables: Number(first.tables) };
  }
}
