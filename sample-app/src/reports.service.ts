import { Injectable } from '@nestjs/common';
import { type DbConnection, InjectConnection, mikroOrmVersion } from 'nestjs-dbmanager';

/** Reads through the analytics connection's query builder: Kysely on MikroORM 7 (Knex on 6.6, which this sample also runs on). */
@Injectable()
export class ReportsService {
  constructor(@InjectConnection('analytics') private readonly analytics: DbConnection) {}

  async summary(): Promise<{ connection: string; type: string; tables: number }> {
    const tables = mikroOrmVersion().major === 7 ? await this.countWithKysely() : await this.countWithKnex();
    return { connection: this.analytics.name, type: this.analytics.type, tables };
  }

  private async countWithKysely(): Promise<number> {
    const db = this.analytics.kysely();
    const count = db.fn.countAll<number>().as('tables');
    const row =
      this.analytics.type === 'sqlite'
        ? await db.selectFrom('sqlite_master').select(count).where('type', '=', 'table').executeTakeFirstOrThrow()
        : await db.selectFrom('information_schema.tables').select(count).where('table_schema', 'not in', ['pg_catalog', 'information_schema']).executeTakeFirstOrThrow();
    return Number(row.tables);
  }

  private async countWithKnex(): Promise<number> {
    const knex = this.analytics.knex();
    const query =
      this.analytics.type === 'sqlite'
        ? knex('sqlite_master').where('type', 'table')
        : knex('information_schema.tables').whereNotIn('table_schema', ['pg_catalog', 'information_schema']);
    const [row] = await query.count({ tables: '*' });
    return Number(row.tables);
  }
}
