import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sanitizeOptionsFor, sanitizeSql, summarizeSql } from '../../lib/tracing/sql-summary';

describe('summarizeSql', () => {
  it.each([
    ['select "n0".* from "note" as "n0" where "n0"."id" = 5', 'SELECT', 'SELECT note'],
    ['SELECT * FROM public.users WHERE name = $1', 'SELECT', 'SELECT public.users'],
    ["insert into `audit` (`who`) values ('me')", 'INSERT', 'INSERT audit'],
    ['update only "accounts" set "password" = \'hunter2\' where id = 1', 'UPDATE', 'UPDATE accounts'],
    ['delete from [dbo].[sessions] where token = ?', 'DELETE', 'DELETE dbo.sessions'],
    ['create table if not exists "daily_totals" (id int)', 'CREATE', 'CREATE daily_totals'],
    ['  (select 1)', 'SELECT', 'SELECT'],
    ['begin', 'BEGIN', 'BEGIN'],
    ['PRAGMA busy_timeout = 5000', 'PRAGMA', 'PRAGMA'],
    ['', 'QUERY', 'QUERY'],
  ])('%s → %s / %s', (sql, operation, summary) => {
    expect(summarizeSql(sql)).toEqual({ operation, summary });
  });

  it('never takes a table name out of a string literal or a comment', () => {
    expect(summarizeSql("select 'x from passwords' as a").summary).toBe('SELECT');
    expect(summarizeSql('select 1 -- from secrets\n').summary).toBe('SELECT');
    expect(summarizeSql('select $tag$ from secrets $tag$').summary).toBe('SELECT');
  });
});

describe('sanitizeSql', () => {
  it('replaces strings, numbers and comments with ? and keeps identifiers and placeholders', () => {
    expect(sanitizeSql(`insert into "user" ("name", "password", "n0") values ('bob', 'hunter2', 42) returning "id"`)).toBe(
      'insert into "user" ("name", "password", "n0") values (?, ?, ?) returning "id"',
    );
    expect(sanitizeSql('select * from t where a = $1 and b = ? /* secret */ -- more')).toBe('select * from t where a = $1 and b = ? ? ?');
    expect(sanitizeSql("select E'it\\'s secret', 'it''s', 1.5e3, 0x1F")).toBe('select E?, ?, ?, ?');
  });

  it('masks a string under both escaping rules, so no dialect can uncover part of a value', () => {
    // PostgreSQL reads 'a\' as a whole string; MySQL reads \' as an escaped quote. Either way "secret" is a literal.
    expect(sanitizeSql("select 'a\\' || 'secret'")).not.toContain('secret');
    expect(sanitizeSql("select 'x\\', 'secret' from t")).not.toContain('secret');
  });

  it('treats "…" as a string only where the dialect does (MySQL/MariaDB)', () => {
    expect(sanitizeSql('select "secret" from t', { doubleQuotedStrings: true })).toBe('select ? from t');
    expect(sanitizeSql('select "col" from t')).toBe('select "col" from t');
  });

  it('leaves no quoted value in the output, whatever the value (property)', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 6 }).filter((v) => /[A-Za-z]{6}/.test(v)), (value) => {
        const quoted = `'${value.replace(/'/g, "''")}'`;
        const out = sanitizeSql(`insert into t (a, b) values (${quoted}, 7)`);
        const word = /[A-Za-z]{6}/.exec(value)![0];
        return !out.includes(word) || 'insert into t (a, b) values'.includes(word);
      }),
      { numRuns: 500 },
    );
  });

  it('masks what sits inside PostgreSQL nested comments, however the quotes fall', () => {
    expect(sanitizeSql("select 1 /* a /* b */ 'secret' */ from t")).toBe('select ? ? from t');
    expect(sanitizeSql('select 1 /* outer /* inner */ password=hunter2 */ from t')).toBe('select ? ? from t');
    // A quote inside the outer comment must not turn the real literal after it into "SQL".
    expect(sanitizeSql("/* x /* y */ it's */ select 'secret' from t")).not.toContain('secret');
    expect(summarizeSql("/* a /* b */ c */ select * from users where p = 'x'").summary).toBe('SELECT users');
  });

  it('masks MySQL # comments, only where # starts a comment (MySQL/MariaDB)', () => {
    const mysql = sanitizeOptionsFor('mysql');
    expect(sanitizeSql("select a # it's hunter2\nfrom t where b = 'secret'", mysql)).toBe('select a ? from t where b = ?');
    expect(summarizeSql('select a # note: from secrets\nfrom t', sanitizeOptionsFor('mariadb')).summary).toBe('SELECT t');
    // PostgreSQL: # is an operator (XOR, #> on jsonb), not a comment.
    expect(sanitizeSql("select 5 # 3, doc #> '{a,b}' from t", sanitizeOptionsFor('postgresql'))).toBe('select ? # ?, doc #> ? from t');
  });

  it('masks numbers in every form PostgreSQL 16 reads: 1_000_000, 0b101, 0o17, 0x1_F, .5, 1.5e-3', () => {
    expect(sanitizeSql('select 1_000_000, 0b101, 0o17, 0x1_F, 0X1f, .5, 1.5e-3, 1_000.000_1, 12abc from t limit 10')).toBe(
      'select ?, ?, ?, ?, ?, ?, ?, ?, ? from t limit ?',
    );
    // Names and placeholders that contain digits stay.
    expect(sanitizeSql('select "n0".id, t1.c2, col_1 from t1 where a = $12 and b = :p1')).toBe('select "n0".id, t1.c2, col_1 from t1 where a = $12 and b = :p1');
  });

  it('leaves no digit of a number literal behind, whatever its form (property)', () => {
    const digits = fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: 1, maxLength: 6 });
    const number = fc.oneof(
      fc.array(digits, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('_')),
      digits.map((d) => `0x${d}`),
      fc.string({ unit: fc.constantFrom('0', '1'), minLength: 1, maxLength: 8 }).map((b) => `0b${b}`),
      fc.tuple(digits, digits, fc.constantFrom('', 'e+', 'e-', 'E')).map(([a, b, e]) => `${a}.${b}${e ? `${e}${b}` : ''}`),
    );
    fc.assert(
      fc.property(number, (n) => {
        expect(sanitizeSql(`select ${n} from t`)).toBe('select ? from t');
      }),
      { numRuns: 500 },
    );
  });
});
