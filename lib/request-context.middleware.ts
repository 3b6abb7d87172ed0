import type { AsyncLocalStorage } from 'node:async_hooks';
import { Injectable, type NestMiddleware } from '@nestjs/common';
import { type EntityManager, RequestContext } from '@mikro-orm/core';
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
  constructor(private readonly manager: DbManager) {}

  use(_req: unknown, _res: unknown, next: (error?: unknown) => void): void {
    // RequestContext.create() forks every EntityManager up front; its storage is the same AsyncLocalStorage.
    const storage = (RequestContext as unknown as { storage: AsyncLocalStorage<RequestContext> }).storage;
    storage.run(new RequestContext(new LazyForks(this.manager)), next);
  }
}
