import { describe, expect, it } from 'vitest';
import { statementTimeLimitSql } from '../../lib/drivers/mysql-family';

// query_timeout on the MySQL family is a session variable set on each new connection, named and scaled differently by
// the two servers. MariaDB's branch also runs against the machine's real MariaDB (mysql.test.ts); there is no MySQL
// server here, so MySQL's is checked by what it sends.
describe('statementTimeLimitSql', () => {
  it("MySQL: max_execution_time in whole milliseconds, for any version string that is not MariaDB's", () => {
    expect(statementTimeLimitSql('8.0.36', 1_500)).toBe('SET SESSION max_execution_time = 1500');
    expect(statementTimeLimitSql('8.4.2-commercial', 250.7)).toBe('SET SESSION max_execution_time = 250');
    expect(statementTimeLimitSql(undefined, 30_000)).toBe('SET SESSION max_execution_time = 30000');
  });

  it('MariaDB: max_statement_time in seconds, recognised in the version string however it is cased', () => {
    expect(statementTimeLimitSql('10.11.19-MariaDB-0+deb12u1', 1_500)).toBe('SET SESSION max_statement_time = 1.500');
    expect(statementTimeLimitSql('5.5.5-10.6.12-mariadb', 30_000)).toBe('SET SESSION max_statement_time = 30.000');
  });
});
