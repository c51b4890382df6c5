/**
 * The two pieces of Dexie's internals attaching needs, in one place: the
 * declared versions (to add the engine's stores to the oldest one, so every
 * version's cumulative schema has them and no upgrade step drops them) and the
 * IndexedDB factory the app gave its Dexie (to look at the installed schema
 * before the app's database opens). Both are stable since Dexie 3.
 */
import { Dexie, type DexieOptions } from 'dexie';

interface VersionInternals {
  _cfg: { version: number; storesSource: Record<string, string | null> | null };
  stores(schema: Record<string, string | null>): unknown;
}

interface DexieInternals {
  _versions?: VersionInternals[];
  _deps?: { indexedDB: DexieOptions['indexedDB']; IDBKeyRange: DexieOptions['IDBKeyRange'] };
}

/** The versions the app declared, oldest first. */
export function declaredVersions(db: Dexie): VersionInternals[] {
  const versions = (db as unknown as DexieInternals)._versions;
  if (!Array.isArray(versions)) throw new Error('or3-sync: this Dexie build does not expose its versions; Dexie 4 is required');
  return versions;
}

/** The table names the app declared in any version (those set to null included). */
export function declaredTableNames(db: Dexie): Set<string> {
  const names = new Set<string>();
  for (const version of declaredVersions(db)) for (const name of Object.keys(version._cfg.storesSource ?? {})) names.add(name);
  return names;
}

/** A Dexie on the same IndexedDB factory as `db`, opened without a schema (Dexie's dynamic mode). */
export function dynamicTwin(db: Dexie): Dexie {
  const deps = (db as unknown as DexieInternals)._deps;
  return new Dexie(db.name, deps ? { indexedDB: deps.indexedDB, IDBKeyRange: deps.IDBKeyRange } : undefined);
}
