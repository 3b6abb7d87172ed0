import { Injectable, Logger, type NestMiddleware } from '@nestjs/common';
import { type EntityManager, RequestContext } from '@mikro-orm/core';
import { requestScope, type RequestScope } from './drivers/adapters/mikro-orm';
import { DbManager } from './manager/db-manager';

/** Forks a connection's EntityManager the first time a request uses it, so unused connections cost nothing. */
class LazyForks extends Map<string, EntityManager> {
  // Forking asks the context for the current EntityManager again; during that, there is none yet.
  private readonly forking = new Set<string>();

  constructor(private readonly manager: DbManager) {
    super();
  }

  override get(name: string): EntityManager | undefined {
    let em = super.get(name);
    if (em || this.forking.has(name) || !this.manager.has(name)) return em;
    this.forking.add(name);
    try {
      em = this.manager.get(name).orm.em.fork({ useContext: true, disableContextResolution: true });
    } finally {
      this.forking.delete(name);
    }
    this.set(name, em);
    return em;
  }
}

/** Gives every request its own MikroORM context for every connection (as @mikro-orm/nestjs does for one). */
@Injectable()
export class DbRequestContextMiddleware implements NestMiddleware {
  private readonly scope: RequestScope;

  constructor(private readonly manager: DbManager) {
    const lazy = requestScope();
    if (typeof lazy === 'string') new Logger('DbManager').warn(lazy);
    // Without the lazy scope, MikroORM's public RequestContext.create() forks every connection's EntityManager.
    this.scope = typeof lazy === 'string' ? (_forks, next) => RequestContext.create(this.manager.all().map((c) => c.orm.em), next) : lazy;
  }

  use(_req: unknown, _res: unknown, next: (error?: unknown) => void): void {
    this.scope(new LazyForks(this.manager), next);
  }
}
