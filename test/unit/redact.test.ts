import { describe, expect, it } from 'vitest';
import { secretRedactor } from '../../lib/connection/redact';

const base = { user: 'app', database: 'orders', host: 'db.internal', name: 'primary', applicationName: 'primary' };
const redact = (password: string, names: Partial<typeof base> = {}) => secretRedactor({ ...base, ...names, password });

describe('masking never mangles a message', () => {
  it('password "a": ordinary words stay whole (it used to give "p***ssword ***uthentic***tion f***iled")', () => {
    const r = redact('a');
    for (const message of [
      'password authentication failed for user "app"',
      'Knex: Timeout acquiring a connection. The pool is probably full.',
      'connect ECONNREFUSED 127.0.0.1:5432',
    ]) {
      expect(r(message)).toBe(message);
    }
    // Where a credential stands, it is masked however short.
    expect(r('postgres://app:a@db.internal:5432/orders')).toBe('postgres://app:***@db.internal:5432/orders');
    expect(r('{"host":"db","password":"a"}')).toBe('{"host":"db","password":"***"}');
    expect(r("{ user: 'app', password: 'a' }")).toBe("{ user: 'app', password: '***' }");
    expect(r('Server=db;User Id=app;Password=a;')).toBe('Server=db;User Id=app;Password=***;');
  });

  it('a password equal to the user, database or host name: the names stay readable, credentials are still masked', () => {
    expect(redact('postgres', { user: 'postgres' })('password authentication failed for user "postgres"')).toBe('password authentication failed for user "postgres"');
    expect(redact('postgres', { user: 'postgres' })('postgres://postgres:postgres@127.0.0.1:5432/test')).toBe('postgres://postgres:***@127.0.0.1:5432/test');
    expect(redact('test', { database: 'test' })('database "test" does not exist')).toBe('database "test" does not exist');
    expect(redact('db.internal')('getaddrinfo ENOTFOUND db.internal')).toBe('getaddrinfo ENOTFOUND db.internal');
  });

  it('a password that is part of a host, a number or a word is not masked there', () => {
    expect(redact('127')('connect ECONNREFUSED 127.0.0.1:5432')).toBe('connect ECONNREFUSED 127.0.0.1:5432');
    expect(redact('hunter2')('relation "hunter2s" does not exist; see hunter2.log')).toBe('relation "hunter2s" does not exist; see hunter2.log');
  });

  it('a raw password is masked where it stands as a whole token, in any of its encodings', () => {
    const r = redact('p@ss:w/rd');
    expect(r('rejected login p@ss:w/rd.')).toBe('rejected login ***.');
    expect(r('token "p%40ss%3Aw%2Frd" refused')).toBe('token "***" refused');
    expect(r('mysql://app:p%40ss:w%2Frd@db/orders')).toBe('mysql://app:***@db/orders');
    expect(r('postgres://app:p@ss:w/rd@db/orders (unencoded)')).toBe('postgres://app:***@db/orders (unencoded)');
  });

  it('MySQL\'s "(using password: YES)" is not a credential', () => {
    expect(redact('s3cr3t!')("Access denied for user 'app'@'10.0.0.1' (using password: YES)")).toBe("Access denied for user 'app'@'10.0.0.1' (using password: YES)");
    expect(redact('YES')('(using password: YES)')).toBe('(using password: ***)');
  });
});
