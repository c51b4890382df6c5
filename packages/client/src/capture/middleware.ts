/**
 * Capture: a Dexie DBCore middleware that turns every local write to a synced
 * table into an outbox op, stamped and committed in the same IndexedDB
 * transaction as the row, together with the HLC state (PROTOCOL.md section 6).
 * The middleware routes each mutation; `capture-mutation.ts` captures it.
 *
 * Transactions the engine marks as remote (`CaptureRuntime.remoteTransactions`)
 * pass through untouched, so applied server changes are never captured.
 */
import { Dexie } from 'dexie';
import type { DBCore, DBCoreTable, DBCoreTransaction, Middleware } from 'dexie';
import { CAPTURE_TABLES } from '../schema.js';
import { captureMutation, type CaptureMemory } from './capture-mutation.js';
import type { CaptureRuntime } from './runtime.js';

/**
 * Dexie tracks the current transaction in a zone (PSD) that native `await`
 * inside a middleware does not carry. Lower middlewares read it, so every
 * call down runs in the zone the mutation arrived in.
 */
interface DexieZones {
  PSD: unknown;
  usePSD<T>(psd: unknown, fn: () => T): T;
}
const zones = Dexie.Promise as unknown as DexieZones;

/**
 * `down` with its tables built once: Dexie builds a fresh chain of middleware
 * tables on every `table()` call, which costs more than a small write.
 */
function withTableCache(down: DBCore): DBCore {
  const tables = new Map<string, DBCoreTable>();
  return {
    ...down,
    table(name) {
      let table = tables.get(name);
      if (!table) tables.set(name, (table = down.table(name)));
      return table;
    },
  };
}

/** A view of `down` whose tables run every call in the caller's zone. */
function zonedCore(down: DBCore): DBCore {
  const psd = zones.PSD;
  const zoned = <A, R>(fn: (arg: A) => R) => (arg: A) => zones.usePSD(psd, () => fn(arg));
  return {
    ...down,
    table(name) {
      const table = down.table(name);
      return {
        ...table,
        mutate: zoned((req) => table.mutate(req)),
        get: zoned((req) => table.get(req)),
        getMany: zoned((req) => table.getMany(req)),
        query: zoned((req) => table.query(req)),
        openCursor: zoned((req) => table.openCursor(req)),
        count: zoned((req) => table.count(req)),
      };
    },
  };
}

/** The Dexie middleware; register it with `db.use(createCaptureMiddleware(runtime))`. */
export function createCaptureMiddleware(runtime: CaptureRuntime): Middleware<DBCore> {
  return {
    stack: 'dbcore',
    name: 'or3-sync-capture',
    // Below Dexie's hooks middleware (level 2): app hooks shape a row before it is stamped, and the
    // engine's own tables are written without the per-transaction table objects the hooks build.
    level: 1.5,
    create(down: DBCore): Partial<DBCore> {
      const memory: CaptureMemory = { tombstoneTables: null };
      const below = withTableCache(down);
      // Dexie asks for tables and scopes per transaction; both are built once here.
      const capturing = new Map<string, DBCoreTable>();
      const scopes = new Map<string, string[]>();
      return {
        ...down,
        transaction(stores, mode, options) {
          if (mode !== 'readwrite') return down.transaction(stores, mode, options);
          const id = stores.join('\u0000');
          let widened = scopes.get(id);
          if (!widened) {
            widened = stores.some((name) => runtime.tables.has(name)) ? [...new Set([...stores, ...CAPTURE_TABLES])] : stores;
            scopes.set(id, widened);
          }
          return down.transaction(widened, mode, options);
        },
        table(name) {
          const table = below.table(name);
          const synced = runtime.tables.get(name);
          if (!synced) return table;
          let captured = capturing.get(name);
          if (!captured) {
            captured = {
              ...table,
              mutate(req) {
                // Writes of the app's upgrade() functions are not captured: the engine is not open
                // yet, and every device runs the same upgrade on its own copy (adoption reconciles them).
                if (runtime.remoteTransactions.has(req.trans) || isUpgradeTransaction(req.trans)) return table.mutate(req);
                const zoned = zonedCore(below);
                return captureMutation(zoned, zoned.table(name), synced, runtime, memory, req);
              },
            } satisfies DBCoreTable;
            capturing.set(name, captured);
          }
          return captured;
        },
      };
    },
  };
}

function isUpgradeTransaction(trans: DBCoreTransaction): boolean {
  return (trans as unknown as IDBTransaction).mode === 'versionchange';
}
