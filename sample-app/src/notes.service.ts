import { Injectable, type OnModuleInit } from '@nestjs/common';
import { type EntityRepository, MikroORM } from '@mikro-orm/core';
import { InjectRepository } from 'nestjs-dbmanager';
import { Note } from './note.entity';

/** Notes on the default connection, through their repository (request-scoped inside a request). */
@Injectable()
export class NotesService implements OnModuleInit {
  constructor(
    @InjectRepository(Note) private readonly notes: EntityRepository<Note>,
    // The default connection's MikroORM, by class as in a single-database @mikro-orm/nestjs app.
    private readonly orm: MikroORM,
  ) {}

  /** Creates the notes table if it is missing (a real app would run migrations). */
  async onModuleInit(): Promise<void> {
    // MikroORM 7's `schema.update()`; 6.6, which this sample also runs on, calls it `updateSchema()`.
    const schema = this.orm.schema as unknown as { update?(o: object): Promise<void>; updateSchema(o: object): Promise<void> };
    await (schema.update ? schema.update({ safe: true }) : schema.updateSchema({ safe: true }));
  }

  list(): Promise<Note[]> {
    return this.notes.findAll({ orderBy: { id: 'desc' }, limit: 20 });
  }

  async add(text: string): Promise<Note> {
    const note = this.notes.create({ text, createdAt: new Date() });
    await this.notes.getEntityManager().flush();
    return note;
  }
}
