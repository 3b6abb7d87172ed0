import { inject, it, expect } from 'vitest';
import { DbManager } from '../../lib';

it('pg and sqlite on 7', async () => {
  const url = inject('postgresUrl');
  const m = await DbManager.create({ connections: { pg: { type: 'postgres', dsn: url, max_open_conns: 2 }, lite: { type: 'sqlite', filepath: ':memory:' } } });
  try {
    const pg = m.get('pg');
    console.log(await pg.em.getConnection().execute('select 1 as one'));
    console.log(await pg.kysely().selectNoFrom((eb: any) => eb.lit(1).as('x')).execute());
    console.log(await pg.withNativeClient((c: any) => c.query('select 2 as two').then((r: any) => r.rows)));
    await pg.em.fork().transactional(async (em) => {
      await em.getConnection().execute('create temporary table tt (x int)', [], 'run', em.getTransactionContext());
      console.log('in trx native', await pg.withNativeClient((c: any) => c.query('select count(*) from tt').then((r: any) => r.rows)));
    });
    console.log(m.stats());
    console.log(await m.healthCheck());
    const lite = m.get('lite');
    console.log(await lite.em.getConnection().execute('select 1 as one'), await lite.withNativeClient((db: any) => db.prepare('select 3 as three').get()));
    expect(() => pg.knex()).toThrow(/knex\(\) is the query builder of MikroORM 6/);
  } finally {
    await m.close();
  }
});
