import type { ConnectionConfig } from '../config/config.types';

/** Builds a function that masks this connection's password and DSN wherever they might appear in a text. */
export function secretRedactor(config: Pick<ConnectionConfig, 'password' | 'dsn'>): (text: string) => string {
  const secrets = new Set<string>();
  for (const secret of [config.password, config.dsn]) {
    if (!secret) continue;
    secrets.add(secret);
    secrets.add(encodeURIComponent(secret));
  }
  const ordered = [...secrets].filter((s) => s.length >= 1).sort((a, b) => b.length - a.length);
  return (text: string) => {
    let out = text;
    for (const secret of ordered) out = out.split(secret).join('***');
    return out;
  };
}

/** The message of any thrown value, as one line. */
export function errorMessage(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length) return errorMessage(error.errors[0]);
  const message = error instanceof Error ? error.message || error.name : String(error);
  const code = (error as { code?: unknown })?.code;
  const text = message.split('\n')[0];
  return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
}
