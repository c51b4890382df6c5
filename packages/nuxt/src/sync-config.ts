/** What the module puts in `runtimeConfig.public.or3Sync`: plain data, so it survives serialization. */
import type { SyncedTableOptions } from '@or3/sync-client';

/** The module's options (`or3Sync` in `nuxt.config`), also its public runtime config. */
export interface SyncModuleOptions {
  /**
   * The or3-sync gateway, e.g. `https://sync.example.com`; empty for the page's own
   * origin. `NUXT_PUBLIC_OR3_SYNC_BASE_URL` overrides it at run time.
   */
  baseUrl: string;
  /** The app's Dexie stores, as for `openWorkspace` (`{ threads: 'id, project_id', ... }`). */
  schema: Record<string, string>;
  /** Which tables sync and how they delete; every table of `schema` by default. */
  syncedTables?: readonly string[] | Record<string, SyncedTableOptions>;
  /** Dexie version of `schema`; bump it when the schema changes. Default 1. */
  schemaVersion?: number;
}
