import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseDbManagerConfig } from '../../lib';
import { CONNECTION_FIELDS, MANAGER_FIELDS } from '../../lib/config/config-schema';
import { configJsonSchema, type FieldDocs } from '../../lib/config/json-schema';

const ROOT = join(__dirname, '..', '..');
const TABLES = ['POOL_FIELDS', 'MANAGER_FIELDS', 'CONNECTION_FIELDS'];

/** The TSDoc of every field in config-schema.ts's tables: the text an editor shows for it, in TypeScript and in YAML. */
function fieldDocs(): FieldDocs {
  const path = join(ROOT, 'lib/config/config-schema.ts');
  const source = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const docs: Record<string, string> = {};
  const visit = (node: ts.Node): void => {
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && TABLES.includes(node.name.text) && node.initializer) {
      let table: ts.Expression = node.initializer;
      while (ts.isSatisfiesExpression(table) || ts.isAsExpression(table)) table = table.expression;
      if (!ts.isObjectLiteralExpression(table)) throw new Error(`${node.name.text} is not an object literal`);
      for (const field of table.properties) {
        if (!ts.isPropertyAssignment(field) || !ts.isIdentifier(field.name)) continue;
        const comment = ts.getJSDocCommentsAndTags(field).map((doc) => ts.getTextOfJSDocComment(doc.comment) ?? '').join(' ');
        docs[field.name.text] = comment.replace(/\s+/g, ' ').trim();
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return docs;
}

const yamlOf = (file: string): unknown => parse(readFileSync(join(ROOT, file), 'utf8'));

let compiled: ValidateFunction | undefined;
/**
 * The schema (what config.schema.json holds, as the first test checks), compiled by a standard validator in its
 * strictest mode: an unknown keyword, an undeclared required property or a union type would be an error.
 */
function validator(): ValidateFunction {
  compiled ??= new Ajv({ allErrors: true, strict: true }).compile(configJsonSchema(fieldDocs()));
  return compiled;
}
function problems(config: unknown): string[] {
  const validate = validator();
  if (validate(config)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}${'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
}

describe('config.schema.json, the JSON Schema of the YAML configuration', () => {
  it('is generated from the field tables and their TSDoc (npm run config-schema rewrites it)', async () => {
    const docs = fieldDocs();
    // Every field is documented: the docs are what an editor shows.
    expect(Object.keys(docs).sort()).toEqual(Object.keys({ ...MANAGER_FIELDS, ...CONNECTION_FIELDS }).sort());
    expect(Object.entries(docs).filter(([, doc]) => doc === '')).toEqual([]);
    expect(docs.maxOpenConns).toBe('Most connections the pool opens (MongoDB: `maxPoolSize`).');
    await expect(`${JSON.stringify(configJsonSchema(docs), null, 2)}\n`).toMatchFileSnapshot(join(ROOT, 'config.schema.json'));
  });

  it('is exported by the package as nestjs-dbmanager/config.schema.json and shipped in it', () => {
    const resolved = createRequire(join(ROOT, 'package.json')).resolve('nestjs-dbmanager/config.schema.json');
    expect(resolved).toBe(join(ROOT, 'config.schema.json'));
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
    expect(pkg.files).toContain('config.schema.json');
  });

  it.each(['sample-app/config.yaml', 'sample-app/config.full.yaml', 'test/fixtures/seed-config.yaml'])('%s validates against it, as the parser accepts it', (file) => {
    const config = yamlOf(file);
    expect(problems(config)).toEqual([]);
    expect(() => parseDbManagerConfig(config, { env: {}, warn: () => undefined })).not.toThrow();
  });

  it('the sample configs name it on their first line, for the YAML language server', () => {
    for (const file of ['sample-app/config.yaml', 'sample-app/config.full.yaml']) {
      expect(readFileSync(join(ROOT, file), 'utf8').split('\n')[0]).toBe('# yaml-language-server: $schema=../config.schema.json');
    }
  });

  it('a typo, a field of another database type, a bad value or both spellings of a key fail it, where the parser fails too', () => {
    const seed = yamlOf('test/fixtures/seed-config.yaml') as { dbmanager: Record<string, unknown> & { connections: Record<string, Record<string, unknown>> } };
    const variants: Array<[string, (c: typeof seed) => void, string]> = [
      ['manager typo', (c) => (c.dbmanager.health_check_intervall = '5s'), '/dbmanager must NOT have additional properties (health_check_intervall)'],
      ['connection typo', (c) => (c.dbmanager.connections.primary.hots = 'db'), '/dbmanager/connections/primary must NOT have additional properties (hots)'],
      ['unknown type', (c) => (c.dbmanager.connections.primary.type = 'oracle'), '/dbmanager/connections/primary/type must be equal to one of the allowed values'],
      ['host on SQLite', (c) => (c.dbmanager.connections['cache-db'].host = 'db'), '/dbmanager/connections/cache-db must NOT have additional properties (host)'],
      ['filepath on PostgreSQL', (c) => (c.dbmanager.connections.primary.filepath = 'x.db'), '/dbmanager/connections/primary must NOT have additional properties (filepath)'],
      ['sslmode on MongoDB', (c) => (c.dbmanager.connections.documents.sslmode = 'require'), '/dbmanager/connections/documents must NOT have additional properties (sslmode)'],
      ['port out of range', (c) => (c.dbmanager.connections.primary.port = 99_999), '/dbmanager/connections/primary/port must be <= 65535'],
      ['duration in words', (c) => (c.dbmanager.retry_delay = '1 second'), '/dbmanager/retry_delay must match pattern'],
      ['retry_delay under its floor', (c) => (c.dbmanager.retry_delay = 5), '/dbmanager/retry_delay must be >= 10'],
      ['sslmode in capitals', (c) => (c.dbmanager.connections.primary.sslmode = 'REQUIRE'), '/dbmanager/connections/primary/sslmode must be equal to one of the allowed values'],
      ['both spellings', (c) => (c.dbmanager.connections['cache-db'].maxOpenConns = 2), '/dbmanager/connections/cache-db must NOT be valid'],
      ['no host and no dsn', (c) => delete c.dbmanager.connections.primary.host, "/dbmanager/connections/primary must have required property 'host'"],
      ['bad connection name', (c) => (c.dbmanager.connections['bad name'] = { type: 'sqlite', filepath: ':memory:' }), '/dbmanager/connections property name must be valid'],
      ['a MikroORM option the library sets', (c) => (c.dbmanager.connections.primary.mikro_orm = { pool: { max: 9 } }), '/dbmanager/connections/primary/mikro_orm property name must be valid'],
    ];
    for (const [what, change, expected] of variants) {
      const config = structuredClone(seed);
      change(config);
      expect(problems(config).join('\n'), what).toContain(expected);
      expect(() => parseDbManagerConfig(config, { env: {}, warn: () => undefined }), what).toThrow();
    }
  });

  it('accepts what the parser accepts beyond the YAML basics: camelCase, numbers for durations, ${ENV} in any field, no dbmanager root', () => {
    const config = {
      maxOpenConns: 10,
      retry_delay: 250,
      health_check_interval: 0,
      enable_auto_reconnect: '${RECONNECT:-true}',
      connections: {
        app: { type: 'postgres', dsn: '${DATABASE_URL}', port: '${DB_PORT:-5432}', sslmode: '${SSLMODE:-require}', connectTimeout: '1h30m', critical: 'false', tags: { tier: 1 } },
        files: { type: 'sqlite', dsn: 'file:app.db', mikroOrm: { debug: true } },
      },
    };
    expect(problems(config)).toEqual([]);
    expect(() =>
      parseDbManagerConfig(config, { env: { DATABASE_URL: 'postgres://u@db/app', DB_PORT: '5433', SSLMODE: 'disable' }, warn: () => undefined }),
    ).not.toThrow();
  });
});
