import type { ConnectionConfig } from '../../config/config.types';

/** Our settings that go out as startup parameters, and the parameter each becomes. */
const FIELD_OF_PARAMETER: Readonly<Record<string, string>> = { statement_timeout: 'query_timeout', options: 'schema' };

/**
 * What to do about PgBouncer refusing a startup parameter (`unsupported startup parameter: statement_timeout`, 08P01),
 * for the connection's error message; undefined for any other error.
 */
export function explainStartupRefusal(error: unknown, config: ConnectionConfig): string | undefined {
  const message = error instanceof Error ? error.message : '';
  const parameter = /unsupported startup parameter:?\s*"?([A-Za-z0-9_.]+)/i.exec(message)?.[1];
  if (!parameter) return undefined;
  const field = FIELD_OF_PARAMETER[parameter];
  if (config.pooler === 'pgbouncer' || !field) {
    return `the pooler refuses the startup parameter ${parameter}, which this connection's mikro_orm.driverOptions adds: remove it there`;
  }
  return `a pooler (PgBouncer) refuses the startup parameter ${parameter}, which ${field} sends: set pooler: pgbouncer on this connection`;
}
