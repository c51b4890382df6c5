/**
 * A push between the two wires: OR3's ops become gateway ops (stamps in the
 * gateway's spelling, payload fields mapped), and the gateway's per-op
 * outcomes become OR3's results, in request order. An op whose stamp has no
 * gateway spelling is answered `VALIDATION_ERROR` without being sent.
 */
import { toGatewayDevice, toGatewayHlc, StampMappingError } from './hlc-mapping.js';
import { toGatewayPayload } from './payload-mapping.js';
import { toOr3Winner } from './change-mapping.js';
import { rejectionCode } from './error-mapping.js';
import type { GatewayOp, GatewayOpResult } from './gateway-wire.js';
import type { PendingOp, PushOpResult } from './or3-types.js';

/** Each op either mapped for the gateway or already answered. */
export type MappedOp = { op: GatewayOp } | { result: PushOpResult };

export function toGatewayOp(op: PendingOp): MappedOp {
  try {
    const deviceId = toGatewayDevice(op.stamp.deviceId);
    const gatewayOp: GatewayOp = {
      op_id: op.stamp.opId,
      table_name: op.tableName,
      operation: op.operation,
      pk: op.pk,
      clock: op.stamp.clock,
      hlc: toGatewayHlc(op.stamp.hlc, op.stamp.deviceId),
      device_id: deviceId,
    };
    if (op.payload !== undefined && op.payload !== null) gatewayOp.payload = toGatewayPayload(op.tableName, op.payload);
    return { op: gatewayOp };
  } catch (error) {
    if (!(error instanceof StampMappingError)) throw error;
    return { result: { opId: op.stamp.opId, success: false, errorCode: 'VALIDATION_ERROR', error: error.message } };
  }
}

/**
 * One gateway outcome: `applied` → success; `duplicate` → success, `replayed`
 * (committed before, no new version); `superseded` → success without
 * applying, with the winner OR3 stores instead; `rejected` → OR3's code.
 */
export function toOr3Result(opId: string, result: GatewayOpResult): PushOpResult {
  switch (result.status) {
    case 'applied':
      return { opId, success: true, applied: true, serverVersion: result.server_version };
    case 'duplicate':
      return { opId, success: true, applied: true, replayed: true, ...(result.server_version ? { serverVersion: result.server_version } : {}) };
    case 'superseded':
      return {
        opId,
        success: true,
        applied: false,
        ...(result.winner ? { serverVersion: result.winner.server_version, winner: toOr3Winner(result.winner) } : {}),
      };
    case 'rejected': {
      const code = result.error?.code ?? 'invalid_op';
      return { opId, success: false, errorCode: rejectionCode(code), error: `${code}: ${result.error?.message ?? 'rejected'}` };
    }
  }
}
