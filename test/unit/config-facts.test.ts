import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parseDbManagerConfig } from '../../lib';
import { CONNECTION_FIELDS, DATABASE_TYPES } from '../../lib/config/config-schema';
import { DATABASE_FACTS } from '../../lib/drivers/database-facts';
import { driverFor } from '../../lib/drivers/registry';
import { sanitizeOptionsFor, sanitizeSql } from '../../lib/tracing/sql-summary';

const ROOT = join(__dirname, '..', '..');

/** The modules a file loads when it runs (`import type` and type-only specifiers left out): relative files and packages. */
function runtimeImports(file: string): { files: string[]; packages: string[] } {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const files: string[] = [];
  const packages: string[] = [];
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause;
      const bindings = clause?.namedBindings;
      const onlyTypes = bindings && ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((e) => e.isTypeOnly);
      if (clause?.isTypeOnly || (onlyTypes && !clause?.name)) continue;
    } else if (!ts.isExportDeclaration(statement) || statement.isTypeOnly) {
      continue;
    }
    const specifier = (statement.moduleSpecifier as ts.StringLiteral | undefined)?.text;
    if (!specifier) continue;
    if (specifier.startsWith('.')) files.push(resolve(dirname(file), `${specifier}.ts`));
    else packages.push(specifier);
  }
  for (const call of source.text.matchAll(/\brequire\(\s*'([^']+)'\s*\)/g)) packages.push(call[1]);
  return { files, packages };
}

/** Every module reached at run time from `entries`, following relative imports. */
function reachedFrom(entries: string[]): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = [...entries];
  while (queue.length) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    expect(existsSync(file), file).toBe(true);
    files.add(file);
    const found = runtimeImports(file);
    queue.push(...found.files);
    for (const name of found.packages) packages.add(name);
  }
  return { files, packages };
}

describe("each database type's facts (lib/drivers/*.facts.ts)", () => {
  it('config reads them without loading any driver: no driver module, no driver package, at run time', () => {
    const config = readdirSync(join(ROOT, 'lib/config')).map((f) => join(ROOT, 'lib/config', f));
    const { files, packages } = reachedFrom(config);
    const drivers = [...files].map((f) => relative(ROOT, f)).filter((f) => f.startsWith('lib/drivers/'));
    expect(drivers.every((f) => f === 'lib/drivers/database-facts.ts' || f.endsWith('.facts.ts')), drivers.join(', ')).toBe(true);
    expect(drivers).toContain('lib/drivers/postgres.facts.ts');
    // No MikroORM code (its package.json tells the running major) and no database client.
    const DRIVER_PACKAGES = /^(?:@mikro-orm\/(?!core\/package\.json$)|pg$|pg-|mysql2|mariadb|tedious|mongodb|better-sqlite3|sqlite3|knex|kysely|tarn)/;
    expect([...packages].filter((name) => DRIVER_PACKAGES.test(name))).toEqual([]);
    expect(packages).toContain('@mikro-orm/core/package.json');
  });

  it("a type's address field is one of its fields, and every field a type lists is a per-type field of the table", () => {
    for (const type of DATABASE_TYPES) {
      const facts = DATABASE_FACTS[type];
      expect(facts.fields, type).toContain(facts.address);
      for (const field of facts.fields) expect(CONNECTION_FIELDS[field], `${type}.${field}`).toMatchObject({ perType: true });
    }
  });

  it.each(DATABASE_TYPES)("%s: its driver's span name for the database is its facts', so tracing finds its SQL dialect", (type) => {
    const address = DATABASE_FACTS[type].address === 'host' ? { host: 'db' } : { filepath: ':memory:' };
    const config = parseDbManagerConfig({ connections: { a: { type, ...address } } }, { warn: () => undefined }).connections.a;
    const target = driverFor(type).target(config);
    expect(target.dbSystem).toBe(DATABASE_FACTS[type].dbSystem);
    // MySQL and MariaDB read "…" as a string: a span must not show what is inside it.
    const masked = sanitizeSql(`select * from t where secret = "hunter2"`, sanitizeOptionsFor(target.dbSystem));
    if (type === 'mysql' || type === 'mariadb') expect(masked).not.toContain('hunter2');
    else expect(masked).toContain('"hunter2"');
  });
});
