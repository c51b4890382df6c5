/**
 * The two clocks' spellings, mapped both ways without changing their order.
 *
 * OR3 stamps `<ms base36, 9>:<counter base36, 3>:<node, 8 hex>` with the node
 * equal to the device id; the gateway `<ms, 13 digits>-<counter, 6 digits>-<device>`
 * with the device 16 to 64 lowercase hex. An OR3 device `d` is the gateway
 * device `d` + `00000000`, so both sides compare the same `(ms, counter, node)`
 * triple, field by field, in fixed widths: OR3 → gateway → OR3 is the identity
 * and bytewise order is kept (the property test checks both).
 *
 * Stamps written to the same workspace by a non-OR3 client (a device not ending
 * in the pad, or a counter above OR3's 46655) still map to OR3 in order, but
 * not one to one: the device is cut to its first 8 hex, and a counter past
 * OR3's range becomes the last stamp of that millisecond (`zzz:ffffffff`), so
 * two such stamps may meet as equal HLCs, and `opId` breaks the tie as in
 * every revision comparison.
 */

/** An OR3 stamp that has no gateway spelling (bad shape or a device that is not its node). */
export class StampMappingError extends Error {
  override name = 'StampMappingError';
  constructor(
    message: string,
    /** The OR3 field at fault. */
    readonly field: 'hlc' | 'deviceId',
  ) {
    super(message);
  }
}

const OR3_HLC = /^([0-9a-z]{9}):([0-9a-z]{3}):([0-9a-f]{8})$/;
const GATEWAY_HLC = /^(\d{13})-(\d{6})-([0-9a-f]{16,64})$/;
const OR3_DEVICE = /^[0-9a-f]{8}$/;
const DEVICE_PAD = '00000000';
const MAX_GATEWAY_MS = 9_999_999_999_999;
const MAX_OR3_COUNTER = 36 ** 3 - 1;

/** The gateway device id of an OR3 device id (8 lowercase hex). */
export function toGatewayDevice(or3DeviceId: string): string {
  if (!OR3_DEVICE.test(or3DeviceId)) {
    throw new StampMappingError(`stamp.deviceId must be 8 lowercase hex characters (OR3's HLC node), got "${or3DeviceId}"`, 'deviceId');
  }
  return or3DeviceId + DEVICE_PAD;
}

/** The OR3 device id of a gateway device id: its first 8 hex. */
export function toOr3Device(gatewayDeviceId: string): string {
  return gatewayDeviceId.slice(0, 8);
}

/** An OR3 HLC in the gateway's spelling; the node must be `deviceId` when given. */
export function toGatewayHlc(or3Hlc: string, or3DeviceId?: string): string {
  const match = OR3_HLC.exec(or3Hlc);
  if (!match) {
    throw new StampMappingError(`stamp.hlc must be <9 base36>:<3 base36>:<8 hex>, got "${or3Hlc}"`, 'hlc');
  }
  const [, ms36, counter36, node] = match as unknown as [string, string, string, string];
  if (or3DeviceId !== undefined && node !== or3DeviceId) {
    throw new StampMappingError(`stamp.hlc's node ${node} is not stamp.deviceId ${or3DeviceId}`, 'hlc');
  }
  const ms = parseInt(ms36, 36);
  if (ms > MAX_GATEWAY_MS) {
    throw new StampMappingError(`stamp.hlc's time ${ms} is past the gateway's 13-digit range`, 'hlc');
  }
  const counter = parseInt(counter36, 36);
  return `${String(ms).padStart(13, '0')}-${String(counter).padStart(6, '0')}-${toGatewayDevice(node)}`;
}

/** A gateway HLC in OR3's spelling (exact for stamps that came from OR3, see the module note). */
export function toOr3Hlc(gatewayHlc: string): string {
  const match = GATEWAY_HLC.exec(gatewayHlc);
  if (!match) throw new Error(`the gateway sent an hlc that does not parse: "${gatewayHlc}"`);
  const [, ms, counter, device] = match as unknown as [string, string, string, string];
  // Past OR3's counter range the stamp becomes the last one OR3 can spell at that ms, so order still holds.
  const capped = Number(counter) > MAX_OR3_COUNTER;
  const or3Counter = capped ? MAX_OR3_COUNTER : Number(counter);
  const node = capped ? 'ffffffff' : toOr3Device(device);
  return `${Number(ms).toString(36).padStart(9, '0')}:${or3Counter.toString(36).padStart(3, '0')}:${node}`;
}
