import 'reflect-metadata';
import { Console } from 'node:console';
import { PassThrough } from 'node:stream';
import { inspect } from 'node:util';
import { ConsoleLogger, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import safeStringify from 'fast-safe-stringify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DBMANAGER_CONFIG, type DbManagerConfig, DbManager, DbManagerModule, parseDbManagerConfig } from '../../lib';
import { builderQuery } from '../support/mikro-orm-leg';

// A user who logs "what is this connection?" must never print its password: node-postgres hides its own for this reason.
const url = new URL(inject('postgresUrl'));
const PASSWORD = decodeURIComponent(url.password);
const secrets = [PASSWORD, encodeURIComponent(PASSWORD), url.toString()];

/** Every way a user prints an object, each returning the text it produced. */
const printers: Record<string, (value: unknown) => string | Promise<string>> = {
  'console.log': (value) => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (chunk) => (text += String(chunk)));
    new Console({ stdout: out, stderr: out }).log(value);
    return text;
  },
  'util.inspect': (value) => inspect(value),
  'util.inspect (depth Infinity, showHidden)': (value) => inspect(value, { depth: Infinity, showHidden: true }),
  'Nest Logger.log': (value) => captureStdout(() => new Logger('printing').log(value)),
  'Nest ConsoleLogger (json)': (value) => captureStdout(() => new ConsoleLogger('printing', { json: true }).log(value)),
  'JSON.stringify': (value) => JSON.stringify(value),
  'fast-safe-stringify': (value) => safeStringify(value),
};

function captureStdout(write: () => void): string {
  const original = process.stdout.write.bind(process.stdout);
  let text = '';
  process.stdout.write = ((chunk: unknown) => ((text += String(chunk)), true)) as typeof process.stdout.write;
  try {
    write();
  } finally {
    process.stdout.write = original;
  }
  return text;
}

let app: Awaited<ReturnType<typeof NestFactory.create>>;

beforeAll(async () => {
  @Module({
    imports: [
      DbManagerModule.forRoot({
        health_check_interval: 0,
        connections: {
          'from-dsn': { type: 'postgres', dsn: url.toString() },
          'from-fields': { type: 'postgres', host: url.hostname, port: Number(url.port), user: 'postgres', password: PASSWORD, database: 'test' },
        },
      }),
    ],
  })
  class PrintingModule {}
  app = await NestFactory.create(PrintingModule, { logger: false });
  await app.init();
  // Nest's default logger again (logger: false above only kept startup quiet), so Logger.log really prints.
  Logger.overrideLogger(new ConsoleLogger());
});

afterAll(async () => {
  await app?.close();
});

describe('printing never shows a secret', () => {
  it('of a DbConnection, the DbManager, manager.config, what parseDbManagerConfig returns and the DBMANAGER_CONFIG value', async () => {
    const manager = app.get(DbManager);
    const objects: Record<string, unknown> = {
      'DbConnection (dsn)': manager.get('from-dsn'),
      'DbConnection (fields)': manager.get('from-fields'),
      DbManager: manager,
      'manager.config': manager.config,
      parseDbManagerConfig: parseDbManagerConfig({ connections: { a: { type: 'postgres', dsn: url.toString() }, b: { type: 'postgres', host: 'h', password: PASSWORD } } }),
      DBMANAGER_CONFIG: app.get<DbManagerConfig>(DBMANAGER_CONFIG),
    };
    let checked = 0;
    for (const [what, object] of Object.entries(objects)) {
      for (const [how, print] of Object.entries(printers)) {
        const text = await print(object);
        // The print says something useful: the connections are named in it.
        expect(text, `${how} of ${what}`).toMatch(/from-dsn|from-fields|"a"|\ba\b/);
        for (const secret of secrets) expect(text.includes(secret), `${how} of ${what} shows a secret:\n${text.slice(0, 2_000)}`).toBe(false);
        checked++;
      }
    }
    console.log(`[printing] ${checked} prints (${Object.keys(printers).join(', ')}) of ${Object.keys(objects).length} objects: no password, no DSN`);
  });

  it('and the drivers still get the password: both connections query the real server', async () => {
    const manager = app.get(DbManager);
    for (const name of ['from-dsn', 'from-fields']) {
      const rows = await builderQuery<{ who: string }>(manager.get(name), 'select current_user as who');
      expect(rows[0].who).toBe('postgres');
    }
    // The password is there to read by name, hidden from enumeration (a spread drops it).
    const config = manager.config.connections['from-fields'];
    expect(config.password).toBe(PASSWORD);
    expect(Object.keys(config)).not.toContain('password');
    expect({ ...config }.password).toBeUndefined();
    expect(manager.get('from-dsn').settings).toMatchObject({ password: '***', dsn: expect.stringMatching(/^postgres:\/\/postgres:\*\*\*@/) });
  });
});
