/** A markdown table: printed to the console as is, and pasted into RESULTS.md. */
export interface Table {
  headers: string[];
  rows: string[][];
  /** Columns to right-align (numbers), by index. */
  numeric?: number[];
}

export function renderTable({ headers, rows, numeric = [] }: Table): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (text: string, i: number) => (numeric.includes(i) ? text.padStart(widths[i]!) : text.padEnd(widths[i]!));
  const line = (cells: string[]) => `| ${cells.map(cell).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (numeric.includes(i) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(headers), rule, ...rows.map(line)].join('\n');
}
