/** Browser entry of the rescan benchmark: `rescan.ts` bundles it and calls `runRescanBench`. */
import { runRescanRounds, type RescanRound } from './rescan-rounds.js';

declare global {
  interface Window {
    runRescanBench(records: number, rounds: number): Promise<RescanRound[]>;
  }
}

window.runRescanBench = runRescanRounds;
