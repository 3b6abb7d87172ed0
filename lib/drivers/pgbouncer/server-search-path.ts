import type { ConnectionConfig } from '../../config/config.types';
import { PoolerRefusedError } from '../../errors';

/** Runs one statement on a pooled connection and resolves to its rows. */
export type RowsQuery = (sql: string) => Promise<Array<Record<string, unknown>>>;

/**
 * `schema` behind PgBouncer: it cannot go out per connection (PgBouncer refuses the startup parameter `options`, and a
 * SET would reach one of its server connections and leak to other clients), so the server side must provide it —
 * a role or database search_path, or PgBouncer's connect_query. Checked once per pool opened: when the server's
 * search_path does not start with the schema, the connection refuses to start (the EntityManager would write to the
 * schema and the query builder, `em.execute` and the native client to another one) with the fix spelled out.
 */
export async function checkServerSearchPath(config: ConnectionConfig, query: RowsQuery): Promise<void> {
  const schema = config.schema;
  if (!schema) return;
  const [row] = await query("select current_setting('search_path') as search_path, current_user as current_user, current_database() as current_database");
  const searchPath = String(row?.search_path ?? '');
  const first = firstSchema(searchPath, String(row?.current_user ?? ''));
  if (first === schema) return;
  const quoted = `"${schema.replaceAll('"', '""')}"`;
  const role = `"${String(row?.current_user ?? config.user ?? '').replaceAll('"', '""')}"`;
  // The server's own names: PgBouncer's database entry may call the database something else.
  const database = `"${String(row?.current_database ?? config.database ?? '').replaceAll('"', '""')}"`;
  throw new PoolerRefusedError(
    config.name,
    'pgbouncer',
    `schema "${schema}" is not first on the server's search_path (it is ${searchPath || 'empty'}), and behind PgBouncer it cannot be ` +
      'set per connection (PgBouncer refuses the startup parameter options; a SET would reach one server connection and leak to other clients)',
    `Set it on the server side: ALTER ROLE ${role} IN DATABASE ${database} SET search_path = ${quoted}, public ` +
      `(holds in every pool mode); or, in transaction mode only, PgBouncer's [databases] entry connect_query='SET search_path = ${quoted}, public' ` +
      "(session mode's server_reset_query, DISCARD ALL, undoes it). Server connections PgBouncer already holds keep their old " +
      'search_path: RECONNECT them (PgBouncer console) or restart PgBouncer',
  );
}

/** The first schema of a search_path setting, `$user` meaning the current user. */
function firstSchema(searchPath: string, currentUser: string): string {
  const entry = (searchPath.split(',')[0] ?? '').trim();
  const name = entry.startsWith('"') && entry.endsWith('"') ? entry.slice(1, -1).replaceAll('""', '"') : entry;
  return name === '$user' ? currentUser : name;
}
