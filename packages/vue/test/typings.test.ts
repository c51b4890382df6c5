/**
 * The composables' types, checked by `npm run typecheck` (tsc reads this file;
 * `expectTypeOf` fails the compile when a type regresses). The composables need a
 * component to run, so the calls sit in functions that are typed, never called.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type { PendingOpRow, SyncEngine } from '@or3/sync-client';
import { useFailedOps, useLiveQuery } from '../src/index.js';

interface Note {
  id: string;
  text: string;
}

const notes = (engine: SyncEngine) => engine.db.table<Note, string>('notes').toArray();
const withInitial = () => useLiveQuery(notes, [], { initial: [] });
const withInitialAndNoDeps = () => useLiveQuery(notes, undefined, { initial: [], onError: () => {} });
const withoutInitial = () => useLiveQuery(notes);
const withOptionsButNoInitial = () => useLiveQuery(notes, [], { onError: () => {} });

describe('typings', () => {
  it('useLiveQuery with `initial` is typed T', () => {
    expectTypeOf<ReturnType<typeof withInitial>['value']>().toEqualTypeOf<Note[]>();
    expectTypeOf<ReturnType<typeof withInitialAndNoDeps>['value']>().toEqualTypeOf<Note[]>();
  });

  it('useLiveQuery without `initial` is typed T | undefined', () => {
    expectTypeOf<ReturnType<typeof withoutInitial>['value']>().toEqualTypeOf<Note[] | undefined>();
    expectTypeOf<ReturnType<typeof withOptionsButNoInitial>['value']>().toEqualTypeOf<Note[] | undefined>();
  });

  it('useFailedOps().ops is never undefined', () => {
    expectTypeOf<ReturnType<typeof useFailedOps>['ops']['value']>().toEqualTypeOf<PendingOpRow[]>();
  });
});
