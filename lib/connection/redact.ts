import type { ConnectionConfig } from '../config/config.types';

const MASK = '***';

/**
 * A bare password shorter than this is an ordinary word or number ("a", "on", "127"): masking it wherever it stands
 * alone would mangle messages and protect nothing. It is still masked wherever a credential stands.
 */
const MIN_BARE_PASSWORD = 4;

/** `scheme://` and the rest of the URL, up to a space, a quote or a closing bracket. */
const URL_TOKEN = /\b([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^\s'"`<>()[\]{}]+)/g;

/** A password-like key (`password`, `"pwd"`, `Password=`) and its value: quoted, or up to a separator. */
const KEY_VALUE = /((["']?)\b(?:password|passwd|pwd)\2\s*([:=])\s*)("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s,;&)}\]]*)/gi;

/** What a redactor reads from a connection's config: its password, and the names that must stay readable. */
export type RedactedConnection = Pick<ConnectionConfig, 'password' | 'user' | 'database' | 'host' | 'name' | 'applicationName' | 'schema'>;

/**
 * Builds a function that masks this connection's credentials in a text without mangling it: a URL's user-info
 * password, the value of a password key (quoted, after `=`, or equal to the password), and the raw password
 * elsewhere only where it stands as a whole token — and not at all when it equals the user, database or host name,
 * which stay readable.
 */
export function secretRedactor(config: RedactedConnection): (text: string) => string {
  const password = config.password ?? '';
  const forms = password ? [...new Set([password, encodeURIComponent(password), userInfoEncoded(password)])].sort((a, b) => b.length - a.length) : [];
  const names = new Set([config.user, config.database, config.host, config.name, config.applicationName, config.schema]);
  const bare = password.length >= MIN_BARE_PASSWORD && !names.has(password) ? forms : [];
  return (text: string) => maskBareTokens(maskKeyValues(maskUrlCredentials(text), forms), bare);
}

/** How a URL parser writes a password in a URL's user-info (it escapes fewer characters than encodeURIComponent). */
function userInfoEncoded(password: string): string {
  const url = new URL('postgres://u@h');
  url.password = password;
  return url.password;
}

/** `scheme://user:password@host` → `scheme://user:***@host`; the last `@` of the URL ends its user-info. */
function maskUrlCredentials(text: string): string {
  return text.replace(URL_TOKEN, (whole, scheme: string, rest: string) => {
    const at = rest.lastIndexOf('@');
    if (at === -1) return whole;
    const userInfo = rest.slice(0, at);
    const colon = userInfo.indexOf(':');
    if (colon === -1) return whole;
    return `${scheme}${userInfo.slice(0, colon)}:${MASK}${rest.slice(at)}`;
  });
}

/**
 * The value after a password key: always when quoted (an option object) or after `=` (a connection string), else only
 * when it is the password itself — MySQL's "(using password: YES)" stays as it is.
 */
function maskKeyValues(text: string, forms: readonly string[]): string {
  return text.replace(KEY_VALUE, (whole, key: string, _quote: string, separator: string, value: string) => {
    if (!value) return whole;
    const quote = value[0] === '"' || value[0] === "'" ? value[0] : '';
    if (quote) return `${key}${quote}${MASK}${quote}`;
    return separator === '=' || forms.includes(value) ? `${key}${MASK}` : whole;
  });
}

/** Each occurrence of a password form that stands as a whole token (not inside a word, a number or a host name). */
function maskBareTokens(text: string, forms: readonly string[]): string {
  let out = text;
  for (const form of forms) {
    let from = 0;
    for (let at = out.indexOf(form, from); at !== -1; at = out.indexOf(form, from)) {
      const end = at + form.length;
      if (joined(out, at - 1, at - 2) || joined(out, end, end + 1)) {
        from = at + 1;
        continue;
      }
      out = out.slice(0, at) + MASK + out.slice(end);
      from = at + MASK.length;
    }
  }
  return out;
}

/** True when the character at `i` continues a word: a letter or digit, or `.` `-` `:` `/` `@` `%` `+` with one beyond it. */
function joined(text: string, i: number, beyond: number): boolean {
  const c = text[i];
  if (c === undefined) return false;
  if (/[A-Za-z0-9_]/.test(c)) return true;
  return '.-:/@%+'.includes(c) && /[A-Za-z0-9_]/.test(text[beyond] ?? '');
}

/** The message of any thrown value, as one line. */
export function errorMessage(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length) return errorMessage(error.errors[0]);
  const message = error instanceof Error ? error.message || error.name : String(error);
  const code = (error as { code?: unknown })?.code;
  const text = message.split('\n')[0];
  return typeof code === 'string' && !text.includes(code) ? `${text} (${code})` : text;
}
