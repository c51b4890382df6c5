/**
 * What opening the engine settles in its own state, in one transaction: the
 * tables holding tombstones (an older engine's clock state does not name
 * them), an adoption owed after a fresh attach or an app schema upgrade, the
 * synced tables (a table new since the last open owes a catch-up,
 * `catch-up.ts`), and this install's device id.
 */
import type { Dexie } from 'dexie';
import { freshAdoption, readAdoption } from './adopt.js';
import { noteSyncedTables } from './catch-up.js';
import { readClockState, writeClockState } from './clock-state.js';
import { newDeviceId } from './ids.js';
import { STATE_KEYS, STATE_TABLE, TOMBSTONES_TABLE } from './schema.js';

/** Settles the engine's state on open; returns the device id (created on the first open). */
export function openEngineState(db: Dexie, declaredVersion: number, syncedTables: readonly string[]): Promise<string> {
  const state = db.table(STATE_TABLE);
  const tombstones = db.table(TOMBSTONES_TABLE);
  return db.transaction('rw', state, tombstones, async () => {
    // A clock state from an older engine does not say which tables hold tombstones: find out once.
    const clockState = await readClockState(db);
    if (clockState.tombstoneTables === null) {
      const keys = (await tombstones.toCollection().primaryKeys()) as unknown as [string, string][];
      clockState.tombstoneTables = [...new Set(keys.map(([table]) => table))];
      await writeClockState(db, clockState);
    }
    // An app upgrade() may have rewritten rows without capture: adopt them against the server.
    const version = (await state.get(STATE_KEYS.appSchemaVersion))?.value;
    const upgraded = typeof version === 'number' && version !== declaredVersion;
    await state.put({ key: STATE_KEYS.appSchemaVersion, value: declaredVersion });
    const row = await state.get(STATE_KEYS.deviceId);
    // No device id: no sync history (a new attach, or the engine's tables were lost). Adopt what is there.
    const fresh = typeof row?.value !== 'string';
    if ((fresh || upgraded) && !(await readAdoption({ db }))) {
      await state.put({ key: STATE_KEYS.adoption, value: freshAdoption() });
    }
    await noteSyncedTables(db, syncedTables);
    if (!fresh) return row!.value as string;
    const id = newDeviceId();
    await state.put({ key: STATE_KEYS.deviceId, value: id });
    return id;
  });
}
