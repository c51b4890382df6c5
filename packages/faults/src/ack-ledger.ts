/**
 * What the clients were told: every op a device sent, and every push result
 * that reached a client (an answer the proxy dropped never counts). The
 * durability checks read it: an acknowledged write must survive.
 */
import type { OpResult, PushOp } from '@or3/sync-client';

/** One push result as a client received it. */
export interface ReceivedResult {
  device: string;
  op: PushOp;
  result: OpResult;
}

export class AckLedger {
  /** Every op ever sent, by op id (the latest copy sent: a re-stamp changes its hlc). */
  readonly sent = new Map<string, { device: string; op: PushOp }>();
  /** Every result that reached a client, in arrival order. */
  readonly received: ReceivedResult[] = [];

  /** A push request is leaving `device`. */
  noteSent(device: string, ops: PushOp[]): void {
    for (const op of ops) this.sent.set(op.op_id, { device, op });
  }

  /** A push answer reached `device`. */
  noteAnswered(device: string, ops: PushOp[], results: OpResult[]): void {
    const byId = new Map(ops.map((op) => [op.op_id, op]));
    for (const result of results) {
      const op = byId.get(result.op_id);
      if (op) this.received.push({ device, op, result });
    }
  }

  /** Results that acknowledge the op as stored (applied, or applied before). */
  acknowledged(): ReceivedResult[] {
    return this.received.filter((r) => r.result.status === 'applied' || r.result.status === 'duplicate');
  }
}
