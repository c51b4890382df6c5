/**
 * The server's configuration against the app's (PROTOCOL.md section 6, "Held
 * ops"): before its first push the engine asks a provider that can tell
 * (`describeServer()`, the gateway's `GET /v1/config`) which tables it syncs
 * and by which key field, and reports each synced table the server does not
 * sync as declared, naming the server flag that fixes it. Nothing fails: the
 * ops of such a table are held when the server rejects them, and go through
 * once the server is fixed.
 */
import type { EngineContext } from './context.js';
import type { ErrorEvent } from './events.js';
import { isConfigMismatch, outbox } from './outbox/index.js';
import type { ServerDescription } from './provider.js';
import type { SyncedTable } from './schema.js';

/** The wire field of a table's primary key (its wire name when the app maps it). */
function wirePrimaryKey(table: SyncedTable): string {
  return table.conventions.toWireNames.get(table.primaryKey) ?? table.primaryKey;
}

/** The mismatches between the app's synced tables and what the server syncs, as `sync.error:action` events. */
export function serverMismatches(tables: Iterable<SyncedTable>, server: ServerDescription): ErrorEvent[] {
  const byName = new Map(server.tables.map((t) => [t.name, t.primaryKey]));
  const events: ErrorEvent[] = [];
  for (const table of tables) {
    const field = wirePrimaryKey(table);
    const flag = field === 'id' ? table.name : `${table.name}:${field}`;
    const serverKey = byName.get(table.name);
    if (serverKey === undefined) {
      const message = `table \`${table.name}\` is not synced by this server: add \`${flag}\` to the server's --tables (its writes are held until then)`;
      events.push({ phase: 'push', code: 'unknown_table', message, tableName: table.name, held: true });
    } else if (serverKey !== field) {
      const message = `table \`${table.name}\` is keyed by \`${field}\` in the app but by \`${serverKey}\` on the server: start the server with --tables ${table.name}:${field} (its writes are held until then)`;
      events.push({ phase: 'push', code: 'pk_mismatch', message, tableName: table.name, held: true });
    }
  }
  return events;
}

/**
 * Asks the server for its configuration and reports every mismatch. Returns
 * false when the server could not tell (unreachable): the engine asks again before its next run.
 */
export async function reportServerMismatches(ctx: EngineContext): Promise<boolean> {
  if (!ctx.provider.describeServer) return true;
  let server: ServerDescription;
  try {
    server = await ctx.provider.describeServer();
  } catch {
    return false;
  }
  for (const event of serverMismatches(ctx.runtime.tables.values(), server)) ctx.events.emit('sync.error:action', event);
  return true;
}

/**
 * When the ops held for a configuration mismatch go again: before the
 * engine's first run, after the realtime channel reconnects (`reconnected()`),
 * and every `retryMs` while any is held. Also asks for the server's
 * configuration before the first run that reaches it.
 */
export class ConfigWatch {
  private due = true;
  private releasedAt = 0;
  private checked = false;

  constructor(
    private readonly retryMs: number,
    private readonly now: () => number,
  ) {}

  /** The channel reconnected: the server may have been fixed. */
  reconnected(): void {
    this.due = true;
  }

  /** True when held ops have waited `retryMs` since their last release. */
  get retryDue(): boolean {
    return this.now() - this.releasedAt >= this.retryMs;
  }

  /** Before a run: reports mismatches (once), and releases the held ops when due. */
  async beforeRun(ctx: EngineContext): Promise<void> {
    if (this.due || this.retryDue) {
      this.due = false;
      this.releasedAt = this.now();
      if ((await outbox.releaseHeld(ctx.db, (_, reason) => isConfigMismatch(reason.code))) > 0) await ctx.refreshPendingEstimate();
    }
    if (!this.checked) this.checked = await reportServerMismatches(ctx);
  }
}
