import { Entity, PrimaryKey, Property } from '@mikro-orm/core';

/** A MikroORM entity on the primary connection; its table is created at start. */
@Entity({ tableName: 'notes' })
export class Note {
  @PrimaryKey()
  id!: number;

  @Property()
  text!: string;

  @Property()
  createdAt: Date = new Date();
}
