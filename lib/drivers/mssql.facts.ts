import type { SslMode } from '../config/config-schema';
import type { DatabaseFacts, TlsSwitches } from './database-facts';

/**
 * SQL Server's DSN `encrypt` / `trustServerCertificate` mean what `sslmode` means, so they must agree with it; alone,
 * `encrypt` sets it (`false` → disable; on, with a trusted certificate → require; on → verify-full), so a server
 * without TLS is refused instead of answered in plain text.
 */
const tdsTls: TlsSwitches = {
  // Lowercase, as tedious' connection strings write them.
  values: { encrypt: ['true', 'false', 'strict'], trustServerCertificate: ['true', 'false'] },
  named: 'sslmode (or encrypt and trustServerCertificate)',
  resolve({ mode, tlsRequired }, { encrypt, trustServerCertificate: trust }) {
    if (mode === undefined) {
      const implied: SslMode | undefined = encrypt === undefined ? undefined : encrypt === 'false' ? 'disable' : trust === 'true' ? 'require' : 'verify-full';
      return { sslmode: implied, contradictions: [] };
    }
    const contradictions: string[] = [];
    if (encrypt !== undefined && (encrypt !== 'false') !== tlsRequired) {
      contradictions.push(`query parameter encrypt=${encrypt} contradicts sslmode "${mode}": say it in one place`);
    }
    if (trust !== undefined && tlsRequired && (trust === 'true') !== (mode === 'require')) {
      contradictions.push(
        `query parameter trustServerCertificate=${trust} contradicts sslmode "${mode}" (require trusts any certificate, verify-ca and verify-full check it): say it in one place`,
      );
    }
    return { sslmode: mode, contradictions };
  },
};

/** SQL Server, as the configuration and tracing see it (lib/drivers/mssql.ts is the driver). */
export const mssqlFacts = {
  dbSystem: 'microsoft.sql_server',
  dsnSchemes: ['sqlserver:', 'mssql:'],
  address: 'host',
  fields: ['host', 'port', 'user', 'password', 'database', 'sslmode', 'schema'],
  dsnParams: { tlsSwitches: tdsTls },
} as const satisfies DatabaseFacts;
