import { Module } from '@nestjs/common';
import { DbManagerModule } from 'nestjs-dbmanager';
import { Note } from './note.entity';
import { NotesService } from './notes.service';

/** The notes feature: its entity joins the default connection's discovery, its repository is injectable here. */
@Module({
  imports: [DbManagerModule.forFeature([Note])],
  providers: [NotesService],
  exports: [NotesService],
})
export class NotesModule {}
