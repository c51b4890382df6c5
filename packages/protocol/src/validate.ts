/**
 * Validation of one raw push op (PROTOCOL.md section 4, pinned by
 * conformance/validation.json): checks a to h in order, the first failing one
 * gives the rejection code, as `sync_core::validate` does. A backend with
 * limits of its own (Convex's storable values) adds one check after g through
 * `ValidationRules.checkPayload`.
 */
import { isDeviceId, tryParseHlc } from './hlc.js';
import { compactJsonBytes } from './utf8.js';
import type { OpRejection, PushOp, RecordPayload, RejectionCode } from './wire.js';

/**
 * An op that passed every check; the inside of a push only sees these. Its
 * `op_id` is lowercased: op ids compare and deduplicate by their lowercase bytes.
 */
export interface ValidOp extends PushOp {
  /** Tombstone: a delete, or a put whose payload says `deleted: true`. */
  deleted: boolean;
}

/** A rejection found by validation: always one of the protocol's codes. */
export interface ValidationRejection extends OpRejection {
  code: RejectionCode;
}

/** A backend's own problem with a payload that passed checks a to g. */
export interface PayloadProblem {
  code: RejectionCode;
  message: string;
}

/** What the checks need to know about the server. */
export interface ValidationRules {
  tables: ReadonlyMap<string, string>;
  maxPayloadBytes: number;
  maxClockSkewMs: number;
  /** Server time, epoch ms. */
  nowMs: number;
  /** A backend's own check of an object payload, run after g (size) and before h (skew). */
  checkPayload?: (payload: RecordPayload) => PayloadProblem | null;
}

/** Either the valid op or the rejection, with the op id to report it under. */
export type ValidationOutcome =
  | { ok: true; op: ValidOp }
  | { ok: false; op_id: string; rejection: ValidationRejection };

const REQUIRED_FIELDS = ['op_id', 'table_name', 'operation', 'pk', 'clock', 'hlc', 'device_id'] as const;
const ALLOWED_FIELDS = new Set<string>([...REQUIRED_FIELDS, 'payload']);
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const MAX_PK_CODE_POINTS = 256;

/** Runs checks a to h (and the backend's `checkPayload`) on a raw JSON op. */
export function validateOp(raw: unknown, rules: ValidationRules): ValidationOutcome {
  const opId = isObject(raw) && typeof raw.op_id === 'string' ? raw.op_id : '';
  const reject = (code: RejectionCode, message: string, field?: string): ValidationOutcome => ({
    ok: false,
    op_id: opId,
    rejection: field === undefined ? { code, message } : { code, message, field },
  });

  // a. structure
  if (!isObject(raw)) return reject('invalid_op', 'an op must be a JSON object');
  for (const key of Object.keys(raw)) {
    if (!ALLOWED_FIELDS.has(key)) return reject('invalid_op', `unknown field ${JSON.stringify(key)}`, key);
  }
  for (const key of REQUIRED_FIELDS) {
    if (!Object.hasOwn(raw, key)) return reject('invalid_op', `missing field ${key}`, key);
  }
  if (typeof raw.op_id !== 'string' || !UUID.test(raw.op_id)) {
    return reject('invalid_op', 'op_id must be a hyphenated UUID', 'op_id');
  }
  for (const key of ['table_name', 'pk', 'hlc', 'device_id'] as const) {
    if (typeof raw[key] !== 'string') return reject('invalid_op', `${key} must be a string`, key);
  }
  const { table_name: table, pk, hlc, device_id: deviceId } = raw as Record<string, string>;
  if (raw.operation !== 'put' && raw.operation !== 'delete') {
    return reject('invalid_op', 'operation must be "put" or "delete"', 'operation');
  }
  const operation = raw.operation;
  const clock = raw.clock;
  if (typeof clock !== 'number' || !Number.isSafeInteger(clock) || clock < 0) {
    return reject('invalid_op', 'clock must be an integer from 0 to 2^53-1', 'clock');
  }
  if (!isDeviceId(deviceId)) return reject('invalid_op', 'device_id must be 16 to 64 lowercase hex chars', 'device_id');

  // b. table
  const pkField = rules.tables.get(table!);
  if (pkField === undefined) return reject('unknown_table', `table ${JSON.stringify(table)} is not synced`, 'table_name');

  // c. pk
  const pkProblem = pkProblemOf(pk!);
  if (pkProblem !== null) return reject('invalid_pk', pkProblem, 'pk');

  // d. hlc
  const parsed = tryParseHlc(hlc!);
  if (parsed === null) return reject('invalid_hlc', 'hlc does not parse as <ms:13>-<counter:6>-<device_id>', 'hlc');
  if (parsed.deviceId !== deviceId) return reject('invalid_hlc', 'hlc suffix differs from device_id', 'hlc');

  // e. payload shape
  const payload = Object.hasOwn(raw, 'payload') ? raw.payload : null;
  if (operation === 'put' && !isObject(payload)) return reject('invalid_op', 'a put needs an object payload', 'payload');
  if (payload !== null && !isObject(payload)) {
    return reject('invalid_op', 'a delete payload must be absent, null or an object', 'payload');
  }

  if (payload !== null) {
    // f. the payload carries its own pk
    if (!Object.hasOwn(payload, pkField) || payload[pkField] !== pk) {
      return reject('pk_mismatch', `payload.${pkField} must be the string ${JSON.stringify(pk)}`, 'payload');
    }
    // g. size as compact JSON
    const bytes = compactJsonBytes(payload);
    if (bytes > rules.maxPayloadBytes) {
      return reject('payload_too_large', `payload is ${bytes} bytes of JSON; the limit is ${rules.maxPayloadBytes}`, 'payload');
    }
    // The backend's own limits (Convex: storable as a nested Convex value).
    const problem = rules.checkPayload?.(payload) ?? null;
    if (problem !== null) return reject(problem.code, problem.message, 'payload');
  }

  // h. future clock skew
  if (parsed.ms > rules.nowMs + rules.maxClockSkewMs) {
    return {
      ok: false,
      op_id: opId,
      rejection: {
        code: 'clock_skew',
        message: `hlc is ${parsed.ms - rules.nowMs} ms ahead of server time; at most ${rules.maxClockSkewMs} is allowed`,
        field: 'hlc',
        retryable: true,
      },
    };
  }

  return {
    ok: true,
    op: {
      // UUIDs are case-insensitive: one spelling, lowercase, from here on (PROTOCOL.md section 2).
      op_id: raw.op_id.toLowerCase(),
      table_name: table!,
      operation,
      pk: pk!,
      payload,
      clock,
      hlc: hlc!,
      device_id: deviceId!,
      deleted: operation === 'delete' || payload?.deleted === true,
    },
  };
}

function pkProblemOf(pk: string): string | null {
  let codePoints = 0;
  for (const char of pk) {
    codePoints++;
    const cp = char.codePointAt(0) ?? 0;
    if (cp <= 0x1f || (cp >= 0x7f && cp <= 0x9f)) return 'pk must not contain control characters';
  }
  if (codePoints < 1 || codePoints > MAX_PK_CODE_POINTS) {
    return `pk must be 1 to ${MAX_PK_CODE_POINTS} code points`;
  }
  return null;
}

/** A JSON object: not null, not an array. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
