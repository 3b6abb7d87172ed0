import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionFailedError, DbManager, DbManagerConfigError, parseDbManagerConfig } from '../../lib';
import { mariadbUrlOrSkipReason } from '../support/mariadb';
import { builderQuery, MIKRO_ORM_MAJOR } from '../support/mikro-orm-leg';

// The machines' MariaDB runs with SSL disabled: a connection that requires TLS must fail there, never go on in plain
// text (before, ?sslmode=REQUIRE, verify_full or true in a DSN reached the driver as "no TLS" and connected).
const { url, reason } = mariadbUrlOrSkipReason();
if (reason) console.log(`[mysql-tls.test] skipped: ${reason}`);

/** What each client library says when the server has no TLS to offer: mysql2 (mysql; mariadb on MikroORM 7), the MariaDB connector (mariadb on 6). */
const NO_TLS = { mysql: 'HANDSHAKE_NO_SSL_SUPPORT', mariadb: MIKRO_ORM_MAJOR === 7 ? 'HANDSHAKE_NO_SSL_SUPPORT' : 'ER_SERVER_SSL_DISABLED' } as const;

describe.skipIf(!url).each(['mysql', 'mariadb'] as const)('%s: sslmode require against a server without TLS', (type) => {
  const server = url ? new URL(url) : new URL('mysql://127.0.0.1');
  const base = `${type}://${server.username}${server.password ? `:${server.password}` : ''}@${server.hostname}:${server.port || 3306}${server.pathname}`;
  const fields = { type, host: server.hostname, port: Number(server.port || 3306), user: decodeURIComponent(server.username), password: decodeURIComponent(server.password) || undefined, database: server.pathname.slice(1) || undefined };
  let managers: DbManager[] = [];
  const create = async (connection: Record<string, unknown>, manager: Record<string, unknown> = {}) => {
    const m = await DbManager.create(parseDbManagerConfig({ retry_attempts: 1, ...manager, connections: { db: connection } }));
    managers.push(m);
    return m;
  };
  afterEach(async () => {
    await Promise.all(managers.map((m) => m.close()));
    managers = [];
  });

  it.each([
    ['as a field', { ...fields, sslmode: 'require' }],
    ['as a DSN parameter', { type, dsn: `${base}?sslmode=require` }],
    ['as a DSN parameter, verify-full', { type, dsn: `${base}?sslmode=verify-full` }],
  ])('%s: startup fails with the driver saying the server has no TLS', async (_, connection) => {
    const error = (await create(connection).catch((e: unknown) => e)) as ConnectionFailedError;
    expect(error).toBeInstanceOf(ConnectionFailedError);
    expect((error.cause as { code?: string }).code).toBe(NO_TLS[type]);
    expect(error.message).toContain(`(${NO_TLS[type]})`);
  });

  it('critical: false: starts down and stays down through reconnect attempts, never connected in plain text', async () => {
    const manager = await create({ ...fields, sslmode: 'require', critical: false }, { health_check_interval: '100ms', retry_delay: '20ms', retry_max_delay: '50ms' });
    const db = manager.get('db');
    let attempts = 0;
    db.on('reconnect', () => attempts++);
    await expect.poll(() => attempts, { timeout: 5_000 }).toBeGreaterThanOrEqual(3);
    expect(db.status).toBe('down');
    expect(db.stats().lastError).toContain(NO_TLS[type]);
  });

  it.each(['REQUIRE', 'verify_full', 'true', 'Require'])('?sslmode=%s is a config error, so nothing connects', async (mode) => {
    const error = await create({ type, dsn: `${base}?sslmode=${mode}` }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DbManagerConfigError);
    expect((error as Error).message).toContain('connections.db.dsn: query parameter sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full');
  });

  it('the control: sslmode disable connects, in plain text (the failures above are about TLS only)', async () => {
    const manager = await create({ type, dsn: `${base}?sslmode=disable` });
    const rows = await builderQuery<{ Value: string }>(manager.get('db'), "show session status like 'Ssl_cipher'");
    expect(rows[0].Value).toBe('');
  });
});
