/** Browser entry of the capture benchmark: `capture.ts --chromium` bundles it and calls `runCaptureBench`. */
import { Dexie } from 'dexie';
import { runCaptureRounds, type CaptureRound } from './capture-rounds.js';

declare global {
  interface Window {
    runCaptureBench(rows: number, rounds: number): Promise<CaptureRound[]>;
  }
}

window.runCaptureBench = (rows, rounds) =>
  runCaptureRounds(
    {
      indexedDB: () => window.indexedDB,
      IDBKeyRange: window.IDBKeyRange,
      deleteDatabase: (name) => Dexie.delete(name),
    },
    rows,
    rounds,
  );
