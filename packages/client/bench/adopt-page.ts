/** Browser entry of the adoption benchmark: `adopt.ts` bundles it and calls `runAdoptBench`. */
import { runAdoptRounds, type AdoptRound } from './adopt-rounds.js';

declare global {
  interface Window {
    runAdoptBench(baseUrl: string, token: string, workspaceIds: string[], records: number): Promise<AdoptRound[]>;
  }
}

window.runAdoptBench = runAdoptRounds;
