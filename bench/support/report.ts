import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { renderTable, type Table } from './table';

/** The machine a run happened on, for the header of RESULTS.md. */
export function machine(): Record<string, string> {
  return {
    CPUs: `${availableParallelism()} (\`nproc\`)`,
    'CPU model': cpus()[0]?.model.trim() ?? 'unknown',
    RAM: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    Node: process.version,
    OS: `${process.platform} ${process.arch}`,
  };
}

/** Collects what each section measured; prints it as it comes and writes it all to RESULTS.md at the end. */
export class Report {
  private readonly parts: string[] = [];
  private readonly summaryRows: string[][] = [];

  /** One line of the summary table at the top of RESULTS.md: measure, ours, reference, comparison. */
  summary(measure: string, ours: string, reference: string, comparison: string): void {
    this.summaryRows.push([measure, ours, reference, comparison]);
  }

  /** The summary table (also printed at the end of the run). */
  summaryTable(): string {
    return renderTable({ headers: ['measure', 'ours', 'reference', 'ours vs reference'], rows: this.summaryRows });
  }

  section(title: string, intro?: string): void {
    this.add(`## ${title}`);
    if (intro) this.add(intro);
  }

  table(table: Table): void {
    this.add(renderTable(table));
  }

  note(text: string): void {
    this.add(text);
  }

  write(path: string, header: { command: string; startedAt: Date; totalMs: number; settings: string }): void {
    const info = { ...machine(), Date: header.startedAt.toISOString(), Command: `\`${header.command}\``, 'Total runtime': `${(header.totalMs / 1000).toFixed(0)} s (after compiling with tsc)` };
    const lines = [
      '# Benchmark results',
      '',
      'Written by `npm run bench` (bench/run.ts) from the run described below; every number is from that one run.',
      '',
      ...Object.entries(info).map(([k, v]) => `- ${k}: ${v}`),
      `- Settings: ${header.settings}`,
      '',
      '## Summary',
      '',
      this.summaryTable(),
      '',
      this.parts.join('\n\n'),
      '',
    ];
    writeFileSync(path, lines.join('\n'));
  }

  private add(text: string): void {
    this.parts.push(text);
    console.log(`\n${text}`);
  }
}
