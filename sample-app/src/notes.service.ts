import { Injectable, type OnModuleInit } from '@nestjs/common';
import type { EntityManager } from '@mikro-orm/core';
import { type DbConnection, InjectConnection, InjectEntityManager } from 'nestjs-dbmanager';
import { Note } from './note.entity';

/** Notes on the default connection, through the request-scoped EntityManager. */
@Injectable()
export class NotesService implements OnModuleInit {
  constructor(
    @InjectEntityManager() private readonly em: EntityManager,
    @InjectConnection() private readonly primary: DbConnection,
  ) {}

  /** Creates the notes table if it is missing (a real app would run migrations). */
  async onModuleInit(): Promise<void> {
    await this.primary.orm.schema.updateSchema({ safe: true });
  }

  list(): Promise<Note[]> {
    return this.em.find(Note, {}, { orderBy: { id: 'desc' }, limit: 20 });
  }

  async add(text: string): Promise<Note> {
    const note = this.em.create(Note, { text, createdAt: new Date() });
    await this.em.flush();
    return note;
  }
}
