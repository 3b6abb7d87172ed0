/**
 * Turns SQL into text that is safe to put in a span or a log line: literals (strings, numbers, comments) become `?`,
 * so the values an ORM inlines into its statements (MikroORM formats parameters into the SQL it hands knex) and
 * whatever a user wrote literally never leave the process. Identifiers and keywords stay.
 */

import { sqlDialectOf } from '../drivers/database-facts';

/** Options of `sanitizeSql`. */
export interface SanitizeOptions {
  /** MySQL/MariaDB read `"…"` as a string by default; elsewhere it is an identifier. */
  doubleQuotedStrings?: boolean;
  /** MySQL/MariaDB start a comment with `#`; elsewhere it is an operator (PostgreSQL's XOR, `#>` on jsonb). */
  hashComments?: boolean;
}

/**
 * The dialect rules of a database (by its OpenTelemetry `db.system.name`) that change where a literal is: what its
 * facts declare (lib/drivers/*.facts.ts; plain data, no driver loaded).
 */
export function sanitizeOptionsFor(dbSystem: string): SanitizeOptions {
  return sqlDialectOf(dbSystem);
}

/** The operation and its target, e.g. `{ operation: 'SELECT', summary: 'SELECT note' }`. */
export interface SqlSummary {
  /** OpenTelemetry `db.operation.name`: the statement's first keyword, upper case. */
  operation: string;
  /** OpenTelemetry `db.query.summary`: the operation and the table it reads or writes, when found. */
  summary: string;
}

const MAX_SUMMARY = 255;
const MAX_TEXT = 4_096;

/**
 * Replaces every literal with `?`. The text is read with and without backslash escapes, and with block comments
 * nesting (PostgreSQL, SQL Server) and not (MySQL, SQLite); whatever any reading sees as a literal is
 * masked, so no dialect's rule can uncover part of a value.
 */
export function sanitizeSql(sql: string, options: SanitizeOptions = {}): string {
  const text = sql.length > MAX_TEXT * 4 ? sql.slice(0, MAX_TEXT * 4) : sql;
  const masked = new Uint8Array(text.length);
  for (const backslashEscapes of [false, true]) {
    for (const nestedComments of [false, true]) markLiterals(text, { backslashEscapes, nestedComments }, options, masked);
  }
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (masked[i]) {
      while (i < text.length && masked[i]) i++;
      out += '?';
      continue;
    }
    out += text[i++];
  }
  return maskNumbers(out).replace(/\s+/g, ' ').trim().slice(0, MAX_TEXT);
}

/** The statement's operation and summary (computed on sanitized text, so a literal can never become a "table"). */
export function summarizeSql(sql: string, options: SanitizeOptions = {}): SqlSummary {
  const text = sanitizeSql(sql, options);
  // A leading comment is masked as "?": skip it to reach the first keyword.
  const first = /^[\s(?]*([A-Za-z]+)/.exec(text)?.[1];
  const operation = first ? first.toUpperCase().slice(0, 32) : 'QUERY';
  const target = targetOf(operation, text);
  return { operation, summary: (target ? `${operation} ${target}` : operation).slice(0, MAX_SUMMARY) };
}

const IDENT = String.raw`(?:"(?:[^"]|"")+"|\x60[^\x60]+\x60|\[[^\]]+\]|[A-Za-z_][\w$]*)`;
const QUALIFIED = `${IDENT}(?:\\s*\\.\\s*${IDENT})*`;
const TARGET_AFTER: Record<string, RegExp> = {
  SELECT: new RegExp(`\\bfrom\\s+(${QUALIFIED})`, 'i'),
  DELETE: new RegExp(`\\bfrom\\s+(${QUALIFIED})`, 'i'),
  INSERT: new RegExp(`\\binto\\s+(${QUALIFIED})`, 'i'),
  REPLACE: new RegExp(`\\binto\\s+(${QUALIFIED})`, 'i'),
  MERGE: new RegExp(`\\binto\\s+(${QUALIFIED})`, 'i'),
  UPDATE: new RegExp(`^\\s*update\\s+(?:only\\s+)?(${QUALIFIED})`, 'i'),
  TRUNCATE: new RegExp(`^\\s*truncate\\s+(?:table\\s+)?(${QUALIFIED})`, 'i'),
  CREATE: new RegExp(`^\\s*create\\s+(?:[a-z]+\\s+)*?(?:table|index|view|schema|sequence)\\s+(?:if\\s+not\\s+exists\\s+)?(${QUALIFIED})`, 'i'),
  DROP: new RegExp(`^\\s*drop\\s+(?:table|index|view|schema|sequence)\\s+(?:if\\s+exists\\s+)?(${QUALIFIED})`, 'i'),
  ALTER: new RegExp(`^\\s*alter\\s+(?:table|index|view|schema|sequence)\\s+(?:if\\s+exists\\s+)?(?:only\\s+)?(${QUALIFIED})`, 'i'),
};

function targetOf(operation: string, text: string): string | undefined {
  const found = TARGET_AFTER[operation]?.exec(text)?.[1];
  if (!found) return undefined;
  return found
    .split(/\s*\.\s*/)
    .map((part) => part.replace(/^["`[]|["`\]]$/g, '').replace(/""/g, '"'))
    .join('.');
}

/** One way of reading the text: the rules that differ between dialects (or a server's settings). */
interface Reading {
  backslashEscapes: boolean;
  nestedComments: boolean;
}

/** Marks string literals, quoted as `'…'` (and `"…"` where that is a string), dollar-quoted bodies and comments. */
function markLiterals(text: string, reading: Reading, options: SanitizeOptions, masked: Uint8Array): void {
  const mark = (from: number, to: number) => masked.fill(1, from, Math.min(to, text.length));
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if ((c === '-' && text[i + 1] === '-') || (c === '#' && options.hashComments)) {
      const end = text.indexOf('\n', i);
      const to = end === -1 ? text.length : end;
      mark(i, to);
      i = to;
    } else if (c === '/' && text[i + 1] === '*') {
      const to = endOfBlockComment(text, i, reading.nestedComments);
      mark(i, to);
      i = to;
    } else if (c === "'" || (c === '"' && options.doubleQuotedStrings)) {
      const to = endOfQuoted(text, i, c, reading.backslashEscapes || isEscapeStringPrefix(text, i));
      mark(i, to);
      i = to;
    } else if (c === '"' || c === '`') {
      // An identifier: skipped whole, so a quote inside it cannot start a "string".
      const to = endOfQuoted(text, i, c, false);
      i = to;
    } else if (c === '$') {
      const tag = /^\$([A-Za-z_][\w]*)?\$/.exec(text.slice(i, i + 64))?.[0];
      if (tag && !/\w/.test(text[i - 1] ?? '')) {
        const end = text.indexOf(tag, i + tag.length);
        const to = end === -1 ? text.length : end + tag.length;
        mark(i, to);
        i = to;
      } else i++;
    } else i++;
  }
}

/** Index just past the end of the block comment opened at `start` (counting nested ones when they nest). */
function endOfBlockComment(text: string, start: number, nested: boolean): number {
  if (!nested) {
    const end = text.indexOf('*/', start + 2);
    return end === -1 ? text.length : end + 2;
  }
  let depth = 0;
  let i = start;
  while (i < text.length) {
    if (text[i] === '/' && text[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (text[i] === '*' && text[i + 1] === '/') {
      i += 2;
      if (--depth === 0) return i;
    } else i++;
  }
  return text.length;
}

/** PostgreSQL `E'…'` strings take backslash escapes whatever the server's settings. */
function isEscapeStringPrefix(text: string, quoteAt: number): boolean {
  return (text[quoteAt - 1] === 'E' || text[quoteAt - 1] === 'e') && !/\w/.test(text[quoteAt - 2] ?? '');
}

/** Index just past the closing quote (doubled quotes are escapes); an unterminated literal runs to the end. */
function endOfQuoted(text: string, start: number, quote: string, backslashEscapes: boolean): number {
  let i = start + 1;
  while (i < text.length) {
    const c = text[i];
    if (backslashEscapes && c === '\\') {
      i += 2;
    } else if (c === quote) {
      if (text[i + 1] === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  return text.length;
}

/**
 * Numbers that stand alone (not part of a name, not a `$1` placeholder) become `?`: the whole token from its first
 * digit, so `1_000_000`, `0b101`, `0o17`, `0x1_F` (PostgreSQL 16), `1.5e-3` and `12abc` leave no digit behind.
 */
function maskNumbers(text: string): string {
  return text.replace(/(^|[^\w$.])\.?\d(?:[eE][+-](?=\d)|[\w.])*/g, '$1?');
}
