/**
 * Reads Prometheus' text exposition format (what `GET /metrics` answers) into samples, so tests can ask for one
 * series' value by name and labels.
 */

/** One line of the exposition: a series and its value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A parsed scrape. */
export class Scrape {
  constructor(
    readonly text: string,
    readonly samples: Sample[],
  ) {}

  /** Samples of `name` whose labels include every given one. */
  all(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }

  /** The value of the one series `name{labels}`; undefined when absent, an error when ambiguous. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const found = this.all(name, labels);
    if (found.length > 1) throw new Error(`${name}${JSON.stringify(labels)} matches ${found.length} series`);
    return found[0]?.value;
  }

  /** Every series that carries `label="value"`, whatever its name. */
  withLabel(label: string, value: string): Sample[] {
    return this.samples.filter((s) => s.labels[label] === value);
  }

  /** The `# TYPE` of a metric. */
  type(name: string): string | undefined {
    return new RegExp(`^# TYPE ${name} (\\w+)$`, 'm').exec(this.text)?.[1];
  }
}

export function parsePrometheusText(text: string): Scrape {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2].replace(/\\(.)/g, '$1');
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return new Scrape(text, samples);
}

/** GET `/metrics` of an app over HTTP and parse it (fails the test on a non-200). */
export async function scrape(baseUrl: string, path = '/metrics'): Promise<Scrape> {
  const response = await fetch(baseUrl + path, { signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET ${path} answered ${response.status}: ${text.slice(0, 300)}`);
  return parsePrometheusText(text);
}
