import { Agent, request } from 'node:http';

/** One response: status (0 when the request itself failed), when it was sent and when it ended (ms since the run began), and the error text. */
export interface LoadResult {
  status: number;
  sentAt: number;
  endedAt: number;
  error?: string;
}

/** A GET over a shared keep-alive agent; never rejects (a failed request is status 0). */
export function get(url: string, agent: Agent, startedAt: number): Promise<LoadResult> {
  const sentAt = performance.now() - startedAt;
  return new Promise((resolve) => {
    const req = request(url, { agent, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, sentAt, endedAt: performance.now() - startedAt, error: res.statusCode === 200 ? undefined : body.slice(0, 300) });
      });
    });
    req.on('error', (error) => resolve({ status: 0, sentAt, endedAt: performance.now() - startedAt, error: error.message }));
    req.end();
  });
}

/** Fires `count` requests at once (the agent queues beyond `sockets` open connections) and waits for all. */
export async function burst(urls: (i: number) => string, count: number, sockets = 256): Promise<{ results: LoadResult[]; ms: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets });
  const startedAt = performance.now();
  try {
    const results = await Promise.all(Array.from({ length: count }, (_, i) => get(urls(i), agent, startedAt)));
    return { results, ms: performance.now() - startedAt };
  } finally {
    agent.destroy();
  }
}

/** Runs `workers` request loops until `durationMs` has passed. */
export async function sustained(urls: (i: number) => string, workers: number, durationMs: number): Promise<LoadResult[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: workers });
  const startedAt = performance.now();
  const results: LoadResult[] = [];
  let n = 0;
  try {
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (performance.now() - startedAt < durationMs) results.push(await get(urls(n++), agent, startedAt));
      }),
    );
    return results;
  } finally {
    agent.destroy();
  }
}
