import { Agent, request } from 'node:http';

/** One HTTP answer: status, body and how long it took (ms). */
export interface Answer {
  status: number;
  body: string;
  ms: number;
}

/** A keep-alive HTTP client for one server: requests go one after another over one socket. */
export class HttpClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });

  constructor(private readonly baseUrl: string) {}

  get(path: string, timeoutMs = 60_000): Promise<Answer> {
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const req = request(this.baseUrl + path, { agent: this.agent, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`GET ${path} took longer than ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
