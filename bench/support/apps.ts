import 'reflect-metadata';
import { Controller, Get, type INestApplicationContext, Module, type OnModuleInit, type Type } from '@nestjs/common';
import { ModuleRef, NestFactory } from '@nestjs/core';
import type { Connection, MikroORM } from '@mikro-orm/core';
import { CONTEXT_NAMES, getMikroORMToken, MikroOrmModule } from '@mikro-orm/nestjs';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { HealthCheck, HealthCheckService, MikroOrmHealthIndicator, TerminusModule } from '@nestjs/terminus';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import type { DbManager, DbManagerConfigInput } from '../../lib';
import { mikroOrm } from '../../lib/mikro-orm-version';
import { oursHealthController } from './health-controller';
import { HttpClient } from './http';

// PrometheusModule.register() starts prom-client's default metrics when evaluated, which may happen once per process.
const prometheus = PrometheusModule.register();

/** A running bench app: HTTP on 127.0.0.1 when listening, else an application context. */
export interface BenchApp {
  readonly app: INestApplicationContext;
  /** Keep-alive client for the app's HTTP port (throws when the app does not listen). */
  readonly http: HttpClient;
  close(): Promise<void>;
}

/**
 * What the bench boots of the library: today's lib/ by default, or the build of an earlier commit (bench/before-lib.ts)
 * whose public API these three keep.
 */
export type OursLib = Pick<typeof import('../../lib'), 'DbManagerModule' | 'DbManager' | 'DbHealthIndicator'>;

/** Today's lib/, loaded when first asked for: a process that boots the earlier build never loads it. */
const todaysLib = (): OursLib => require('../../lib') as OursLib;

export interface OursApp extends BenchApp {
  readonly manager: DbManager;
}

export interface AnchorApp extends BenchApp {
  /** The MikroORM of a context, by the name the caller gave it. */
  orm(name: string): MikroORM;
}

/** Our module as a user wires it: DbManagerModule + TerminusModule + PrometheusModule + a /health controller. */
export async function startOursApp(config: DbManagerConfigInput, options: { listen?: boolean; lib?: OursLib } = {}): Promise<OursApp> {
  const lib = options.lib ?? todaysLib();
  @Module({ imports: [lib.DbManagerModule.forRoot(config), TerminusModule, prometheus], controllers: [oursHealthController(lib.DbHealthIndicator)] })
  class OursBenchModule {}
  const app = await boot(OursBenchModule, options.listen ?? true);
  return Object.assign(app, { manager: app.app.get<DbManager>(lib.DbManager) });
}

/** The baseline for /metrics: an app with PrometheusModule only (prom-client's default metrics). */
export async function startPrometheusOnlyApp(): Promise<BenchApp> {
  @Module({ imports: [prometheus] })
  class PrometheusOnlyModule {}
  return boot(PrometheusOnlyModule, true);
}

/** One @mikro-orm/nestjs context of the anchor app. */
export interface AnchorContext {
  name: string;
  url: string;
}

let anchorApps = 0;

/**
 * The anchor: @mikro-orm/nestjs (7.1.0 on MikroORM 7, 6.1.2 on 6) with one MikroOrmModule.forRoot per context (its documented multi-database set-up),
 * Terminus' MikroOrmHealthIndicator on every context, PrometheusModule. MikroORM options are left at their defaults.
 */
export async function startAnchorApp(
  contexts: AnchorContext[],
  options: { listen?: boolean; healthTimeoutMs?: number; pool?: { min: number; max: number } } = {},
): Promise<AnchorApp> {
  const seq = ++anchorApps;
  // Context names are a global list in @mikro-orm/nestjs; a failed startup never runs the shutdown hook that clears it.
  CONTEXT_NAMES.length = 0;
  const tokenOf = (name: string) => getMikroORMToken(`${name}-${seq}`);
  const roots = contexts.map(({ name, url }) =>
    MikroOrmModule.forRoot({
      contextName: `${name}-${seq}`,
      registerRequestContext: false,
      driver: PostgreSqlDriver,
      clientUrl: url,
      discovery: { warnWhenNoEntities: false },
      ...(options.pool ? { pool: options.pool } : {}),
    }),
  );
  const controller = anchorHealthController(
    contexts.map((c) => c.name),
    tokenOf,
    options.healthTimeoutMs ?? 1_000,
  );
  @Module({ imports: [...roots, MikroOrmModule.forMiddleware(), TerminusModule, prometheus], controllers: [controller] })
  class AnchorBenchModule {}
  const app = await boot(AnchorBenchModule, options.listen ?? true);
  const orm = (name: string) => app.app.get<MikroORM>(tokenOf(name), { strict: false });
  // MikroORM 7 connects on the first query (6 did at init), and Terminus' indicator reports a connection that has not
  // run one as down: one query per context makes the anchor what an app that has served a request is.
  if (mikroOrm().major === 7) {
    await Promise.all(contexts.map(({ name }) => (orm(name).em as unknown as { execute(sql: string): Promise<unknown> }).execute('select 1')));
  }
  return Object.assign(app, { orm });
}

function anchorHealthController(names: string[], tokenOf: (name: string) => string, timeout: number): Type<unknown> {
  @Controller('health')
  class AnchorHealthController implements OnModuleInit {
    private connections: Connection[] = [];

    constructor(
      private readonly health: HealthCheckService,
      private readonly mikroOrm: MikroOrmHealthIndicator,
      private readonly moduleRef: ModuleRef,
    ) {}

    onModuleInit(): void {
      this.connections = names.map((name) => this.moduleRef.get<MikroORM>(tokenOf(name), { strict: false }).em.getConnection());
    }

    @Get()
    @HealthCheck()
    check() {
      return this.health.check(names.map((name, i) => () => this.mikroOrm.pingCheck(name, { connection: this.connections[i], timeout })));
    }
  }
  return AnchorHealthController;
}

async function boot(module: Type<unknown>, listen: boolean): Promise<BenchApp> {
  const options = { logger: false as const, abortOnError: false };
  if (!listen) {
    const app = await NestFactory.createApplicationContext(module, options);
    return { app, get http(): HttpClient { throw new Error('this bench app does not listen'); }, close: () => app.close() };
  }
  const app = await NestFactory.create(module, options);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  const http = new HttpClient(`http://127.0.0.1:${port}`);
  return {
    app,
    http,
    async close() {
      http.close();
      await app.close();
    },
  };
}
