/**
 * Primary keys the wire cannot carry fail at attach, naming the table and the
 * key, instead of as rejected pushes on the first write: the wire carries one
 * string key per record, equal to a field of the row. On fake-indexeddb.
 */
import { Dexie } from 'dexie';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import { afterEach, describe, expect, it } from 'vitest';
import { attachSync } from '../src/attach.js';
import type { SyncEngine } from '../src/engine.js';
import type { PendingOpRow } from '../src/outbox/index.js';
import type { SyncedTableOptions } from '../src/schema.js';
import { TableDeclarationError } from '../src/table-conventions.js';
import { ScriptedProvider } from './support/scripted-provider.js';

const opened: SyncEngine[] = [];
afterEach(async () => {
  for (const engine of opened.splice(0)) await engine.close();
});

/** A fresh device's app database declaring `notes` with `notesSpec`. */
function notesDb(notesSpec: string): Dexie {
  const db = new Dexie('or3-db-keys', { indexedDB: new IDBFactory(), IDBKeyRange });
  db.version(1).stores({ notes: notesSpec });
  return db;
}

async function attachNotes(db: Dexie, notes: SyncedTableOptions = {}): Promise<SyncEngine> {
  const engine = await attachSync(db, {
    workspaceId: 'keys',
    provider: new ScriptedProvider(),
    syncedTables: { notes },
    broadcast: false,
    locks: null,
  });
  opened.push(engine);
  return engine;
}

/** Attaching `db` fails with a `TableDeclarationError` matching `message`, and leaves the database closed. */
async function expectRefused(db: Dexie, message: RegExp, notes: SyncedTableOptions = {}): Promise<void> {
  const error = await attachNotes(db, notes).then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(TableDeclarationError);
  expect((error as Error).message).toMatch(message);
  expect(db.isOpen()).toBe(false);
}

describe('primary keys checked at attach', () => {
  it('an auto-incremented key (++id) is refused, naming the table and the field', async () => {
    await expectRefused(notesDb('++id, title'), /table notes, primary key field id: is auto-incremented \(\+\+id\)/);
  });

  it('an auto-incremented custom key (++noteId) is refused the same way', async () => {
    await expectRefused(notesDb('++noteId'), /table notes, primary key field noteId: is auto-incremented/, { primaryKey: 'noteId' });
  });

  it('a compound key ([owner+slug]) is refused, naming its fields', async () => {
    await expectRefused(notesDb('[owner+slug], title'), /table notes, primary key \[owner\+slug\]: is compound \(fields owner, slug\)/);
  });

  it('an outbound key (no key path) is refused', async () => {
    await expectRefused(notesDb(', title'), /table notes, primary key "": has no key path \(an outbound key\)/);
    await expectRefused(notesDb('++, title'), /table notes, primary key "\+\+": has no key path/);
  });

  it('a string key named id attaches and its writes are captured under that key', async () => {
    const engine = await attachNotes(notesDb('id, title'));
    await engine.db.table('notes').put({ id: 'n1', title: 'hello' });
    const ops = (await engine.db.table('_or3sync_outbox').toArray()) as PendingOpRow[];
    expect(ops.map((op) => [op.table_name, op.pk, op.payload?.id])).toEqual([['notes', 'n1', 'n1']]);
  });

  it('a custom string key declared as primaryKey attaches and its writes are captured under that key', async () => {
    const engine = await attachNotes(notesDb('noteId, title'), { primaryKey: 'noteId' });
    await engine.db.table('notes').put({ noteId: 'n2', title: 'hello' });
    const ops = (await engine.db.table('_or3sync_outbox').toArray()) as PendingOpRow[];
    expect(ops.map((op) => [op.table_name, op.pk, op.payload?.noteId])).toEqual([['notes', 'n2', 'n2']]);
  });
});
