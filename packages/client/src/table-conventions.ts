/**
 * An app's per-table conventions: which rows sync (`shouldSync`), which fields
 * never leave the device (`localOnlyFields`), and how local field names map to
 * wire names (`wireNames`). The row in Dexie always has the app's shape; the
 * op pushed and the version pulled have the wire's. Declarations are checked
 * once, at attach, and a bad one fails naming its table and field.
 */
import type { RecordPayload } from '@or3/sync-protocol';

/** What an app may declare about one synced table, beyond keys and deletes. */
export interface TableConventionOptions {
  /**
   * Rows for which this returns false are not synced: a write of such a row is not
   * captured, adoption skips it, and a rescan keeps it although the server lacks it.
   * A later write that makes it pass is captured then, whole. (OR3 Chat: a message
   * while `pending: true`, i.e. still streaming; kv rows holding secrets.)
   */
  shouldSync?: (row: RecordPayload) => boolean;
  /** Fields that never leave the device: stripped before push, kept on apply (OR3 Chat: `file_meta.ref_count`). */
  localOnlyFields?: readonly string[];
  /** Local field name → wire field name (OR3 Chat: `{ postType: 'post_type' }` on `posts`). */
  wireNames?: Readonly<Record<string, string>>;
}

/** The conventions of one table as the engine uses them. */
export interface TableConventions {
  shouldSync: ((row: RecordPayload) => boolean) | null;
  localOnlyFields: readonly string[];
  /** Local → wire, and its inverse. Empty for most tables. */
  toWireNames: ReadonlyMap<string, string>;
  fromWireNames: ReadonlyMap<string, string>;
}

/** Fields the protocol itself reads or writes: never stripped nor renamed. */
const PROTOCOL_FIELDS = ['clock', 'hlc', 'deleted', 'deleted_at', 'created_at', 'updated_at', 'order_key', 'project_id', 'thread_id'];

/** An invalid table declaration, naming the table and the field or option. */
export class TableDeclarationError extends Error {
  constructor(table: string, what: string, problem: string) {
    super(`or3-sync: table ${table}, ${what}: ${problem}`);
    this.name = 'TableDeclarationError';
  }
}

/** The shape of a table's primary key as the app's Dexie schema declares it (Dexie's `IndexSpec`). */
export interface DeclaredPrimaryKey {
  keyPath: string | string[] | null | undefined;
  /** `++`: IndexedDB's key generator numbers the rows. */
  auto?: boolean;
  /** Its declaration, e.g. `++id`, `[a+b]`, `id`. */
  src: string;
}

/**
 * Checks a synced table's primary key as the app's schema declares it: it must be the
 * declared `primaryKey` field, and able to travel: the wire carries one string key
 * per record, equal to a field of the row (the server checks `payload[pk field] === pk`).
 * An auto-incremented key (`++id`) numbers rows per device, so two devices make the same
 * key for different rows; a compound key (`[a+b]`) is several values; an outbound key
 * (no key path) is not in the row at all. Each fails here, naming the table and the key,
 * rather than as a rejected push on the first write.
 */
export function checkPrimaryKey(table: string, primaryKey: string, declared: DeclaredPrimaryKey): void {
  const { keyPath, auto, src } = declared;
  if (keyPath === null || keyPath === undefined || keyPath === '') {
    throw new TableDeclarationError(table, `primary key ${JSON.stringify(src)}`, `has no key path (an outbound key), so the key is not a field of the row; declare the key field first, e.g. '${primaryKey}, ...', and store string keys in it`);
  }
  if (Array.isArray(keyPath)) {
    const joined = keyPath.join(` + ':' + `);
    throw new TableDeclarationError(table, `primary key ${src}`, `is compound (fields ${keyPath.join(', ')}), but the wire carries one string key per record; key the table by one string field (e.g. '${primaryKey}' set to ${joined}) and keep ${src} as an index`);
  }
  if (auto) {
    throw new TableDeclarationError(table, `primary key field ${keyPath}`, `is auto-incremented (${src}): each device would number its rows 1, 2, 3… and two devices would write different rows under one key, and the wire carries string keys only; declare '${keyPath}' without ++ and store string ids in it (e.g. crypto.randomUUID())`);
  }
  if (keyPath !== primaryKey) {
    throw new TableDeclarationError(table, 'primaryKey', `is ${primaryKey} but the app's schema keys the table by ${JSON.stringify(keyPath)}`);
  }
}

/** Checks and resolves the conventions declared for `table` (whose primary key is `primaryKey`). */
export function resolveTableConventions(table: string, primaryKey: string, options: TableConventionOptions): TableConventions {
  const protectedFields = new Set([primaryKey, ...PROTOCOL_FIELDS]);
  const { shouldSync, localOnlyFields = [], wireNames = {} } = options;
  if (shouldSync !== undefined && typeof shouldSync !== 'function') {
    throw new TableDeclarationError(table, 'shouldSync', 'must be a function of the row returning a boolean');
  }
  if (!Array.isArray(localOnlyFields)) throw new TableDeclarationError(table, 'localOnlyFields', 'must be an array of field names');
  for (const field of localOnlyFields) {
    if (typeof field !== 'string' || field === '') throw new TableDeclarationError(table, 'localOnlyFields', `${String(field)} is not a field name`);
    if (protectedFields.has(field)) throw new TableDeclarationError(table, `field ${field}`, 'is synced by the protocol and cannot be local-only');
  }
  if (typeof wireNames !== 'object' || wireNames === null) throw new TableDeclarationError(table, 'wireNames', 'must map local field names to wire names');
  const toWireNames = new Map<string, string>();
  const fromWireNames = new Map<string, string>();
  for (const [local, wire] of Object.entries(wireNames)) {
    if (typeof wire !== 'string' || wire === '') throw new TableDeclarationError(table, `field ${local}`, 'its wire name must be a non-empty string');
    if (protectedFields.has(local)) throw new TableDeclarationError(table, `field ${local}`, 'is a protocol field and cannot be renamed');
    if (protectedFields.has(wire)) throw new TableDeclarationError(table, `field ${local}`, `cannot be renamed to the protocol field ${wire}`);
    if (localOnlyFields.includes(local)) throw new TableDeclarationError(table, `field ${local}`, 'is local-only, so it has no wire name');
    if (fromWireNames.has(wire)) throw new TableDeclarationError(table, `field ${local}`, `its wire name ${wire} is also the wire name of ${fromWireNames.get(wire)}`);
    if (wire !== local && wire in wireNames) {
      throw new TableDeclarationError(table, `field ${local}`, `its wire name ${wire} is itself a renamed local field`);
    }
    if (wire === local) continue;
    toWireNames.set(local, wire);
    fromWireNames.set(wire, local);
  }
  return { shouldSync: shouldSync ?? null, localOnlyFields: [...localOnlyFields], toWireNames, fromWireNames };
}

/** Whether `row` is synced under `conventions`. */
export function rowSyncs(conventions: TableConventions, row: RecordPayload): boolean {
  return conventions.shouldSync === null || conventions.shouldSync(row) !== false;
}

/** The wire payload of a local row: local-only fields stripped, fields renamed. */
export function toWirePayload(conventions: TableConventions, row: RecordPayload): RecordPayload {
  if (conventions.localOnlyFields.length === 0 && conventions.toWireNames.size === 0) return row;
  const wire: RecordPayload = {};
  for (const [field, value] of Object.entries(row)) {
    if (conventions.localOnlyFields.includes(field)) continue;
    wire[conventions.toWireNames.get(field) ?? field] = value;
  }
  return wire;
}

/**
 * The local row of a wire payload: fields renamed back, and the local-only
 * fields of `before` (the row stored before this version) kept.
 */
export function fromWirePayload(conventions: TableConventions, payload: RecordPayload, before: RecordPayload | undefined): RecordPayload {
  if (conventions.localOnlyFields.length === 0 && conventions.fromWireNames.size === 0) return payload;
  const row: RecordPayload = {};
  for (const [field, value] of Object.entries(payload)) {
    const local = conventions.fromWireNames.get(field) ?? field;
    // A device of another app version may send a local-only field: this device's own value stands.
    if (!conventions.localOnlyFields.includes(local)) row[local] = value;
  }
  for (const field of conventions.localOnlyFields) {
    if (before && field in before) row[field] = before[field];
  }
  return row;
}
