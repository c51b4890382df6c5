/** Browser entry of the rescan benchmark: `rescan.ts` bundles it and calls `runRescanBench`. */
import { runGatewayRounds, runRescanRounds, type GatewayRound, type RescanRound } from './rescan-rounds.js';

declare global {
  interface Window {
    runRescanBench(records: number, rounds: number): Promise<RescanRound[]>;
    runGatewayBench(baseUrl: string, token: string, workspaceId: string, records: number, rounds: number): Promise<GatewayRound[]>;
  }
}

window.runRescanBench = runRescanRounds;
window.runGatewayBench = runGatewayRounds;
