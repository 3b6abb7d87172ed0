import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ConnectionConfig, DbManagerConfigError, parseDbManagerConfig } from '../../lib';
import { SSL_MODES } from '../../lib/config/config-schema';
import type { PoolObserver } from '../../lib/drivers/driver';
import { driverFor } from '../../lib/drivers/registry';

function problems(input: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseDbManagerConfig(input, { env, warn: () => undefined });
  } catch (error) {
    expect(error).toBeInstanceOf(DbManagerConfigError);
    return (error as DbManagerConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('expected the config to be rejected');
}

const one = (connection: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): ConnectionConfig =>
  parseDbManagerConfig({ connections: { a: connection } }, { env, warn: () => undefined }).connections.a;

const SSL_VALUES = 'disable, allow, prefer, require, verify-ca, verify-full (lowercase, as libpq takes them)';

describe('DSN query parameters are validated exactly like the fields they stand for', () => {
  it.each([
    ['mysql', 'mysql://u:p@h/db?sslmode=REQUIRE', 'require'],
    ['mariadb', 'mariadb://u:p@h/db?sslmode=verify_full', 'verify-full'],
    ['mysql', 'mysql://u:p@h/db?sslmode=true', undefined],
    ['postgres', 'postgres://u:p@h/db?sslmode=disabled', 'disable'],
    ['mssql', 'sqlserver://u:p@h/db?sslmode=Require', 'require'],
  ])('%s %s is refused with the accepted values, as the field would be', (type, dsn, hint) => {
    const found = problems({ connections: { a: { type, dsn } } });
    expect(found).toEqual([`connections.a.dsn: query parameter sslmode must be one of ${SSL_VALUES}, got a value (not shown)${hint ? ` (did you mean "${hint}"?)` : ''}`]);
    // The field itself says the same.
    const value = new URL(dsn).searchParams.get('sslmode');
    expect(problems({ connections: { a: { type, host: 'h', sslmode: value } } })[0]).toMatch(/^connections\.a\.sslmode: must be one of disable, .* \(lowercase, as libpq takes them\), got "/);
  });

  it('checks every parameter that stands for a field: schema, application_name, authSource, replicaSet, readPreference', () => {
    expect(problems({ connections: { a: { type: 'postgres', dsn: 'postgres://h/db?schema=&application_name=' } } })).toEqual([
      'connections.a.dsn: query parameter schema must not be empty',
      'connections.a.dsn: query parameter application_name must not be empty',
    ]);
    expect(problems({ connections: { a: { type: 'mongodb', dsn: 'mongodb://h/db?readPreference=fastest&authSource=&replicaSet=%20' } } })).toEqual([
      expect.stringMatching(/^connections\.a\.dsn: query parameter readPreference must be one of primary, primaryPreferred, secondary, secondaryPreferred, nearest, got a value \(not shown\)$/),
      'connections.a.dsn: query parameter authSource must not be empty',
      'connections.a.dsn: query parameter replicaSet must not be empty',
    ]);
    expect(one({ type: 'postgres', dsn: 'postgres://h/db?sslmode=verify-full&schema=app&application_name=reports' })).toMatchObject({
      sslmode: 'verify-full', schema: 'app', applicationName: 'reports', dsnParams: {},
    });
    // MongoDB reads URI option names case-insensitively, and names the application appName.
    expect(one({ type: 'mongodb', dsn: 'mongodb://h/db?authsource=admin&READPREFERENCE=secondary&appName=docs&tls=true' })).toMatchObject({
      authSource: 'admin', readPreference: 'secondary', applicationName: 'docs', dsnParams: { tls: 'true' },
    });
  });

  it('a parameter for a field that does not apply to the type is refused, as the field is', () => {
    expect(problems({ connections: { a: { type: 'mysql', dsn: 'mysql://h/db?schema=app' } } })).toEqual([
      'connections.a.dsn: query parameter schema does not apply to a mysql connection (only to postgres, mssql)',
    ]);
    expect(problems({ connections: { a: { type: 'mongodb', dsn: 'mongodb://h/db?sslmode=require' } } })).toEqual([
      'connections.a.dsn: query parameter sslmode does not apply to a mongodb connection (only to postgres, mssql, mysql, mariadb)',
    ]);
  });

  it('a parameter that contradicts the field of the same meaning is an error; the same value twice is fine', () => {
    expect(
      problems({
        connections: {
          a: { type: 'postgres', dsn: 'postgres://h/db?sslmode=require', sslmode: 'disable' },
          b: { type: 'postgres', dsn: 'postgres://h/db?schema=x&application_name=y', schema: 'z', application_name: 'w' },
          c: { type: 'mongodb', dsn: 'mongodb://h/db?readPreference=nearest&authSource=admin', read_preference: 'primary', auth_source: 'users' },
        },
      }),
    ).toEqual([
      'connections.a.sslmode: is "disable" but the dsn\'s query says otherwise: say it in one place',
      'connections.b.schema: is "z" but the dsn\'s query says otherwise: say it in one place',
      'connections.b.application_name: is "w" but the dsn\'s query says otherwise: say it in one place',
      'connections.c.read_preference: is "primary" but the dsn\'s query says otherwise: say it in one place',
      'connections.c.auth_source: is "users" but the dsn\'s query says otherwise: say it in one place',
    ]);
    expect(one({ type: 'postgres', dsn: 'postgres://h/db?sslmode=require', sslmode: 'require' }).sslmode).toBe('require');
  });

  it('SQL Server encrypt / trustServerCertificate: lowercase values, they set sslmode, and may not contradict it', () => {
    expect(problems({ connections: { a: { type: 'mssql', dsn: 'sqlserver://h/db?encrypt=yes&trustServerCertificate=1' } } })).toEqual([
      'connections.a.dsn: query parameter encrypt must be one of true, false, strict, got a value (not shown)',
      'connections.a.dsn: query parameter trustServerCertificate must be one of true, false, got a value (not shown)',
    ]);
    expect(one({ type: 'mssql', dsn: 'sqlserver://h/db?encrypt=true' }).sslmode).toBe('verify-full');
    expect(one({ type: 'mssql', dsn: 'sqlserver://h/db?encrypt=true&trustServerCertificate=true' }).sslmode).toBe('require');
    expect(one({ type: 'mssql', dsn: 'sqlserver://h/db?encrypt=false' }).sslmode).toBe('disable');
    expect(one({ type: 'mssql', dsn: 'sqlserver://h/db?encrypt=strict' })).toMatchObject({ sslmode: 'verify-full', dsnParams: { encrypt: 'strict' } });
    expect(one({ type: 'mssql', dsn: 'sqlserver://h/db?trustServerCertificate=true' }).sslmode).toBeUndefined();
    expect(
      problems({
        connections: {
          a: { type: 'mssql', dsn: 'sqlserver://h/db?encrypt=false', sslmode: 'require' },
          b: { type: 'mssql', dsn: 'sqlserver://h/db?sslmode=verify-full&trustServerCertificate=true' },
          c: { type: 'mssql', dsn: 'sqlserver://h/db?encrypt=true', sslmode: 'disable' },
        },
      }),
    ).toEqual([
      'connections.a.dsn: query parameter encrypt=false contradicts sslmode "require": say it in one place',
      'connections.b.dsn: query parameter trustServerCertificate=true contradicts sslmode "verify-full" (require trusts any certificate, verify-ca and verify-full check it): say it in one place',
      'connections.c.dsn: query parameter encrypt=true contradicts sslmode "disable": say it in one place',
    ]);
  });

  it('a near-miss spelling or an unread TLS switch is refused: ignored, it would connect in plain text', () => {
    for (const query of ['SSLMODE=require', 'ssl-mode=REQUIRED', 'sslMode=require', 'ssl_mode=require']) {
      expect(problems({ connections: { a: { type: 'mysql', dsn: `mysql://h/db?${query}` } } })).toEqual([
        'connections.a.dsn: has a query parameter spelled like sslmode but not exactly, which would be ignored (parameter names are case-sensitive): write sslmode',
      ]);
    }
    expect(problems({ connections: { a: { type: 'mssql', dsn: 'sqlserver://h/db?Encrypt=true' } } })).toEqual([
      expect.stringMatching(/spelled like encrypt but not exactly/),
    ]);
    for (const [type, query] of [['mysql', 'ssl=true'], ['mariadb', 'useSSL=true'], ['postgres', 'ssl=1'], ['postgres', 'tls=true']]) {
      expect(problems({ connections: { a: { type, dsn: `${type}://h/db?${query}` } } })).toEqual([
        'connections.a.dsn: has a TLS query parameter that this library does not read, so the connection would go without TLS: use sslmode instead (sslmode: disable, allow, prefer, require, verify-ca or verify-full)',
      ]);
    }
    // Parameters the driver knows still pass.
    expect(one({ type: 'mysql', dsn: 'mysql://h/db?charset=utf8mb4' }).dsnParams).toEqual({ charset: 'utf8mb4' });
  });

  it('a parameter given twice with different values is refused', () => {
    expect(problems({ connections: { a: { type: 'postgres', dsn: 'postgres://h/db?sslmode=require&sslmode=disable' } } })).toEqual([
      'connections.a.dsn: has the query parameter sslmode twice, with different values: keep one',
    ]);
    expect(problems({ connections: { a: { type: 'mongodb', dsn: 'mongodb://h/db?authSource=admin&authsource=users' } } })).toEqual([
      'connections.a.dsn: has the query parameter authSource twice, with different values: keep one',
    ]);
  });

  it('never quotes a value out of the DSN', () => {
    const found = problems({ connections: { a: { type: 'postgres', dsn: 'postgres://h/db?sslmode=Hunter2x&schema=' }, b: { type: 'mysql', dsn: 'mysql://h/db?HUNTER2Y=1&sslmode=hunter2z' } } });
    expect(found.join('\n')).not.toMatch(/hunter2/i);
  });

  describe("every driver's sslmode mapping is exhaustive: an unexpected value (a config built by hand) is refused, never no TLS", () => {
    const observer: PoolObserver = { acquired: () => undefined, acquireTimedOut: () => undefined, closed: () => undefined, connectionError: () => undefined, closedError: () => undefined, describeError: String };
    const schemes = { postgres: 'postgres', mysql: 'mysql', mariadb: 'mariadb', mssql: 'sqlserver' } as const;
    const tlsOf = (type: keyof typeof schemes, config: ConnectionConfig) => {
      const connection = (driverFor(type).ormOptions(config, observer).options.driverOptions as { connection: Record<string, unknown> }).connection;
      return type === 'mssql' ? (connection.options as Record<string, unknown>).encrypt : connection.ssl;
    };

    it.each(Object.keys(schemes) as Array<keyof typeof schemes>)('%s', (type) => {
      for (const mode of SSL_MODES) {
        const tls = tlsOf(type, one({ type, host: 'h', sslmode: mode }));
        if (mode === 'require' || mode.startsWith('verify')) expect(tls, mode).toBeTruthy();
        else expect(tls, mode).toBeFalsy();
      }
      for (const bad of ['REQUIRE', 'verify_full', 'true', 'disabled', '']) {
        const config = one({ type, host: 'h' });
        (config as { sslmode?: string }).sslmode = bad;
        expect(() => tlsOf(type, config)).toThrow(DbManagerConfigError);
        expect(() => tlsOf(type, config)).toThrow(/connections\.a\.sslmode: must be one of disable, allow, prefer, require, verify-ca, verify-full/);
      }
    });
  });
});

describe('passwords in DSNs', () => {
  it.each([
    'postgres://u:Xk9@mP2/qR7@db:5432/app',
    'postgres://u:p@ss@db:5432/app',
    'postgres://u:ab?c@db:5432/app',
    'postgres://u:ab#c@db:5432/app',
    'postgres://u:50%off@db:5432/app',
    'mysql://u:Xk9/qR7@db/app',
    'mongodb://u:Xk9@mP2/qR7@db/app',
  ])('%s (a password pasted unencoded) is a config error that says what to do and quotes none of it', (dsn) => {
    const type = dsn.split(':')[0];
    const found = problems({ connections: { a: { type, dsn } } });
    expect(found).toEqual([
      'connections.a.dsn: cannot be split into user, password and host: a reserved character (@ : / ? # % & or a space) in its user or password is not percent-encoded. ' +
        'Percent-encode the user and password (encodeURIComponent: @ is %40, / is %2F, ? is %3F, # is %23, % is %25), or leave the password out of the dsn and set it in the password field',
    ]);
    for (const fragment of ['Xk9', 'mP2', 'qR7', 'ab?c', 'ab#c', '50%off', 'p@ss']) expect(found[0]).not.toContain(fragment);
  });

  it('the same passwords percent-encoded are read back exactly', () => {
    for (const password of ['Xk9@mP2/qR7', 'p@ss', 'ab?c', 'ab#c', '50%off', 'a b:c&d', 'pässwörd€']) {
      expect(one({ type: 'postgres', dsn: `postgres://u:${encodeURIComponent(password)}@db:5432/app` })).toMatchObject({ host: 'db', password, user: 'u' });
    }
  });

  it('a password field beside a DSN without a password fills it in', () => {
    expect(one({ type: 'postgres', dsn: 'postgres://app@db:5432/app', password: 'Xk9@mP2/qR7' })).toMatchObject({ user: 'app', host: 'db', password: 'Xk9@mP2/qR7' });
  });

  it('${VAR} in the user-info is percent-encoded on substitution; elsewhere it is not', () => {
    const env = { DB_USER: 'rép@rts', DB_PASSWORD: 'p@ss:w/r?d#%& é€', DB_HOST: 'db.internal', DB_NAME: 'app' };
    const config = one({ type: 'postgres', dsn: 'postgres://${DB_USER}:${DB_PASSWORD}@${DB_HOST}:5432/${DB_NAME}?application_name=r${DB_NAME}' }, env);
    expect(config).toMatchObject({ user: env.DB_USER, password: env.DB_PASSWORD, host: 'db.internal', port: 5432, database: 'app', applicationName: 'rapp' });
    // A fallback is a value like any other.
    expect(one({ type: 'postgres', dsn: 'postgres://u:${NOPE:-a/b@c}@db/app' }).password).toBe('a/b@c');
  });

  it('a whole-DSN ${VAR} is taken as it is: it must be a valid, encoded URL', () => {
    const encoded = `postgres://u:${encodeURIComponent('p@ss/w?rd')}@db:5432/app`;
    expect(one({ type: 'postgres', dsn: '${DATABASE_URL}' }, { DATABASE_URL: encoded })).toMatchObject({ host: 'db', password: 'p@ss/w?rd' });
    const found = problems({ connections: { a: { type: 'postgres', dsn: '${DATABASE_URL}' } } }, { DATABASE_URL: 'postgres://u:p@ss/w?rd@db:5432/app' });
    expect(found).toEqual([expect.stringMatching(/^connections\.a\.dsn: cannot be split into user, password and host/)]);
  });
});

describe('names and escapes', () => {
  it.each(['toString', 'constructor', 'hasOwnProperty', '__proto__', 'valueOf'])('default_connection: %s (a prototype key) is not a connection', (name) => {
    expect(problems({ default_connection: name, connections: { a: { type: 'sqlite', filepath: ':memory:' } } })).toEqual([
      `default_connection: names "${name}", which is not a configured connection`,
    ]);
  });

  it('${my-var} is not a valid variable name: an error, quoted only where the field is not a secret', () => {
    expect(problems({ connections: { a: { type: 'postgres', host: '${my-var}' } } })).toEqual([
      'connections.a.host: has "${my-var}", which is not a valid placeholder: write ${NAME} or ${NAME:-fallback} (a name is letters, digits and _, not starting with a digit), or $${ for a literal ${',
    ]);
    const secret = problems({ connections: { a: { type: 'postgres', host: 'h', password: 'Xk9${my-var}', dsn: 'postgres://u:${9lives}@h/db' } } });
    expect(secret).toEqual([
      'connections.a.password: has a "${" that starts no valid placeholder: write ${NAME} or ${NAME:-fallback} (a name is letters, digits and _, not starting with a digit), or $${ for a literal ${',
      'connections.a.dsn: has a "${" that starts no valid placeholder: write ${NAME} or ${NAME:-fallback} (a name is letters, digits and _, not starting with a digit), or $${ for a literal ${',
    ]);
    expect(secret.join('\n')).not.toMatch(/my-var|Xk9|9lives/);
    expect(problems({ connections: { a: { type: 'postgres', host: 'h', password: 'ab${unterminated' } } })).toEqual([expect.stringMatching(/^connections\.a\.password: has a "\$\{" that starts no valid placeholder/)]);
  });

  it('$${ is a literal ${ (for a password that contains one), and is not looked up', () => {
    expect(one({ type: 'postgres', host: 'h', password: 'pa$${NOPE}ss$$x' }).password).toBe('pa${NOPE}ss$$x');
    expect(one({ type: 'postgres', dsn: 'postgres://u:${PW}@h/db' }, { PW: 'a${b}' }).password).toBe('a${b}');
    expect(one({ type: 'postgres', host: 'h', password: '$${A}${B}' }, { B: 'x' }).password).toBe('${A}x');
  });

  it('no error message quotes a fragment of a secret field (property)', () => {
    // Secrets from characters that no message of ours contains in a row, so any 4-character window found is a leak.
    // A valid placeholder (${NAME}) is a reference, not part of the value: its variable is named when it is unset.
    const secret = fc
      .string({ unit: fc.constantFrom(...'QXZqxz0789@:/?#%&{}$ é'), minLength: 8, maxLength: 24 })
      .filter((s) => /[QXZqxz]/.test(s) && !/\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}/.test(s));
    fc.assert(
      fc.property(secret, fc.constantFrom('postgres', 'mysql', 'mssql', 'mongodb'), (s, type) => {
        const scheme = type === 'mssql' ? 'sqlserver' : type;
        // What a URL parser would take for a scheme: a password pasted into the dsn field, say.
        const word = `q${s.replace(/[^A-Za-z0-9]/g, '')}`;
        const connections: Record<string, Record<string, unknown>> = {
          a: { type, dsn: s },
          b: { type, dsn: `${scheme}://u:${s}@h/db` },
          c: { type, dsn: `${s}://u@h/db` },
          d: { type, dsn: `${scheme}://h/db?sslmode=${encodeURIComponent(s)}&${encodeURIComponent(s)}=1` },
          e: { type, host: 'h', password: `${s}\${-${s}` },
          f: { type, host: 'h', password: 7, dsn: `${scheme}://u:p@h/db?application_name=${encodeURIComponent(s)}`, application_name: 'other' },
          g: { type, dsn: `${word}:${encodeURIComponent(s)}` },
        };
        let message = '';
        try {
          parseDbManagerConfig({ default_connection: 'nope', connections }, { env: {}, warn: () => undefined });
        } catch (error) {
          message = (error as Error).message;
        }
        expect(message).not.toBe('');
        for (const value of [s, word]) {
          for (let i = 0; i + 4 <= value.length; i++) {
            const window = value.slice(i, i + 4);
            if (/[QXZqxz]/.test(window)) expect(message).not.toContain(window);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});
