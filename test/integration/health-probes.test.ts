import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DbHealthIndicator } from '../../lib';
import { startTestPostgres, type TestPostgres } from '../support/embedded-postgres';
import { type HealthApp, startHealthApp } from '../support/health-app';

/**
 * Kubernetes-style probes on the sample app's HealthController: liveness never touches a database, readiness
 * (`checkCritical()`) pings the critical connections only. One critical PostgreSQL this test stops and starts, one
 * `critical: false` connection to a black hole (a server that accepts and never answers).
 */

const HEALTH_TIMEOUT_MS = 1_500;

let pg: TestPostgres;
let blackHole: Server;
const sockets = new Set<Socket>();
let h: HealthApp;
/** Health checks each connection ran (pings), counted from its own events. */
const pings: Record<string, number> = { primary: 0, optional: 0 };

beforeAll(async () => {
  pg = await startTestPostgres();
  // It must read, or the client's FIN is never seen and its sockets linger (FINDINGS).
  blackHole = createServer((socket) => {
    sockets.add(socket);
    socket.resume();
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
  const blackHolePort = (blackHole.address() as { port: number }).port;
  h = await startHealthApp({
    // No background loop: every ping counted below comes from an HTTP call.
    health_check_interval: 0,
    health_check_timeout: HEALTH_TIMEOUT_MS,
    retry_attempts: 1,
    connections: {
      primary: { type: 'postgres', dsn: pg.url, max_open_conns: 2 },
      optional: { type: 'postgres', host: '127.0.0.1', port: blackHolePort, user: 'nobody', database: 'none', critical: false, connect_timeout: '300ms' },
    },
  });
  for (const name of Object.keys(pings)) h.manager.get(name).on('healthCheck', () => pings[name]++);
});

afterAll(async () => {
  await h?.close();
  await pg?.close();
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => blackHole?.close(resolve));
});

describe('liveness apart from readiness', () => {
  it('GET /health/live is 200 with no check at all, and pings nothing', async () => {
    const before = { ...pings };
    const live = await h.get('/health/live');
    expect(live.status).toBe(200);
    expect(live.body).toMatchObject({ status: 'ok', details: {} });
    expect(live.ms).toBeLessThan(HEALTH_TIMEOUT_MS);
    expect(pings).toEqual(before);
  });

  it('GET /health/ready is 200 with the critical connection only while the optional one is black-holed', async () => {
    const before = { ...pings };
    const ready = await h.get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe('ok');
    expect(Object.keys(ready.body.details)).toEqual(['primary']);
    expect(ready.body.details.primary).toMatchObject({ status: 'up', type: 'postgres', critical: true });
    // The black hole was not pinged, so readiness did not wait for its timeout.
    expect(pings.optional).toBe(before.optional);
    expect(pings.primary).toBe(before.primary + 1);
    expect(ready.ms).toBeLessThan(HEALTH_TIMEOUT_MS);

    // /health still reports every connection: the optional one degraded after its own timeout.
    const all = await h.get('/health');
    expect(all.status).toBe(200);
    expect(all.body.status).toBe('degraded');
    expect(all.body.details.optional).toMatchObject({ status: 'degraded', critical: false });
  });

  it('with the critical server stopped: readiness 503 naming it, liveness still 200; ready again once it is back', async () => {
    await pg.stop();
    const notReady = await h.get('/health/ready');
    expect(notReady.status).toBe(503);
    expect(Object.keys(notReady.body.details)).toEqual(['primary']);
    expect(notReady.body.details.primary).toMatchObject({ status: 'down', critical: true });
    expect(notReady.body.details.primary.message).toMatch(/ECONNREFUSED|terminat|connect/i);
    expect(JSON.stringify(notReady.body)).not.toContain(pg.password);

    const live = await h.get('/health/live');
    expect(live.status).toBe(200);
    expect(live.body.status).toBe('ok');

    await pg.start();
    await expect.poll(async () => (await h.get('/health/ready')).status, { timeout: 15_000, interval: 100 }).toBe(200);
  });

  it('checkCritical() called directly: only the critical connection, up, though the optional one is down', async () => {
    const result = await h.app.get(DbHealthIndicator).checkCritical();
    expect(Object.keys(result)).toEqual(['primary']);
    expect(result.primary.status).toBe('up');
  });
});
