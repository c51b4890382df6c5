/** Browser entry of the first-sync benchmark: `first-sync.ts` bundles it and calls its phases one by one. */
import { firstSync, probeLongTasks, rawBulkPut, type FirstSyncRun, type RawRun } from './first-sync-rounds.js';

declare global {
  interface Window {
    p9RawBulkPut(records: number, name: string, chunked?: boolean): Promise<RawRun>;
    p9ProbeLongTasks(): Promise<number>;
    p9FirstSync(baseUrl: string, token: string, workspaceId: string, records: number, snapshotLimit: number | null): Promise<FirstSyncRun>;
  }
}

window.p9RawBulkPut = rawBulkPut;
window.p9ProbeLongTasks = probeLongTasks;
window.p9FirstSync = firstSync;
