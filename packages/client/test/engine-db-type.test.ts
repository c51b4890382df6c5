/**
 * `attachSync` keeps the app's Dexie subclass: `engine.db` is typed as the
 * app's database (its tables typed), `Dexie` when nothing says otherwise.
 * The types are checked by `npm run typecheck`; the test runs on fake-indexeddb.
 */
import { Dexie, type EntityTable } from 'dexie';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { attachSync } from '../src/attach.js';
import type { SyncEngine } from '../src/engine.js';
import { ScriptedProvider } from './support/scripted-provider.js';

interface Note {
  id: string;
  title: string;
}

class NotesDb extends Dexie {
  notes!: EntityTable<Note, 'id'>;

  constructor() {
    super('or3-db-typed', { indexedDB: new IDBFactory(), IDBKeyRange });
    this.version(1).stores({ notes: 'id, title' });
  }
}

describe("engine.db has the app's database type", () => {
  it("attachSync on a Dexie subclass returns an engine whose db is that subclass, tables typed", async () => {
    const engine = await attachSync(new NotesDb(), {
      workspaceId: 'typed',
      provider: new ScriptedProvider(),
      syncedTables: { notes: {} },
      broadcast: false,
      locks: null,
    });
    expectTypeOf(engine).toEqualTypeOf<SyncEngine<NotesDb>>();
    expectTypeOf(engine.db.notes).toEqualTypeOf<EntityTable<Note, 'id'>>();
    await engine.db.notes.put({ id: 'n1', title: 'typed' });
    expect(await engine.db.notes.get('n1')).toMatchObject({ id: 'n1', title: 'typed' });
    await engine.close();
  });

  it('SyncEngine without a type argument holds a plain Dexie', () => {
    expectTypeOf<SyncEngine['db']>().toEqualTypeOf<Dexie>();
  });
});
