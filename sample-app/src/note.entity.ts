import { defineEntity } from '@mikro-orm/core';

/** A note on the primary connection; its table is created at start. */
export class Note {
  id!: number;
  text!: string;
  createdAt: Date = new Date();
}

// defineEntity rather than decorators: the same code runs on MikroORM 7 (which moved @Entity/@Property out of
// @mikro-orm/core) and 6.6, with no reflect-metadata typing rules, and the class stays what services import.
defineEntity({
  class: Note,
  tableName: 'notes',
  properties: (p) => ({
    id: p.integer().primary(),
    text: p.string(),
    createdAt: p.datetime(),
  }),
});
