/**
 * Convex's hard limits, and our own checks of them. convex-test does not
 * enforce most of these, and a deployment enforces them by failing the whole
 * function, so every write and every answer is checked here first and a
 * violation becomes a clear code instead of a crash or a truncation.
 */
import { getDocumentSize, type Value } from 'convex/values';

const MiB = 1024 * 1024;

/** Limits of a Convex deployment (docs.convex.dev/production/state/limits). */
export const CONVEX_LIMITS = {
  /** Size of one stored document, system fields included. */
  documentBytes: MiB,
  /** Elements of one array, in a document, an argument or a return value. */
  arrayElements: 8192,
  /** Fields of one object. */
  objectFields: 1024,
  /** How many times objects and arrays may be nested inside a document. */
  nestingDepth: 16,
  /** Length of a field name of a nested object. */
  fieldNameLength: 1024,
  /** Bytes read by one query or mutation. */
  bytesRead: 16 * MiB,
  /** Bytes written by one mutation. */
  bytesWritten: 16 * MiB,
  /** Documents read by one query or mutation. */
  documentsRead: 32_000,
  /** Documents written by one mutation. */
  documentsWritten: 16_000,
  /** Size of a function's arguments, and of its return value. */
  functionValueBytes: 16 * MiB,
} as const;

/**
 * The largest payload, in bytes of compact JSON, that the Convex backend
 * accepts: a record document must hold the payload plus the stamp, keys and
 * system fields within `documentBytes`. A payload under this limit whose
 * stored form is still larger (numbers take 9 bytes in Convex, 1 in JSON) is
 * rejected with `payload_too_large` by the document size check.
 */
export const CONVEX_MAX_PAYLOAD_BYTES = CONVEX_LIMITS.documentBytes - 16 * 1024;

/**
 * Nesting a payload may use: the record document holds it one level down,
 * so a payload gets one level less than a document.
 */
export const MAX_PAYLOAD_DEPTH = CONVEX_LIMITS.nestingDepth - 1;

/**
 * What one function call may spend: three quarters of Convex's limits (half
 * of the documents), so that what we do not count (the counter, membership,
 * index entries, field overhead of an answer) always fits.
 */
export const TRANSACTION_BUDGET = {
  bytesRead: (CONVEX_LIMITS.bytesRead * 3) / 4,
  bytesWritten: (CONVEX_LIMITS.bytesWritten * 3) / 4,
  documentsRead: CONVEX_LIMITS.documentsRead / 2,
  documentsWritten: CONVEX_LIMITS.documentsWritten / 2,
  /** Bytes of payload (and winners) in one answer. */
  answerBytes: CONVEX_LIMITS.functionValueBytes / 2,
} as const;

/** Why a value cannot be stored in Convex as it is. */
export interface StorabilityProblem {
  code: 'payload_too_large' | 'invalid_op';
  message: string;
}

/**
 * Checks that a JSON payload can be stored as a nested Convex value: arrays of
 * at most 8192 elements, objects of at most 1024 fields, nesting within
 * `MAX_PAYLOAD_DEPTH`, field names Convex accepts (non-empty, at most 1024
 * printable ASCII chars, not starting with `$`), strings without lone
 * surrogates, and only JSON types. Quantities over a limit are
 * `payload_too_large`; shapes Convex cannot represent are `invalid_op`.
 */
export function checkConvexStorable(payload: unknown): StorabilityProblem | null {
  return walk(payload, 1, 'payload');
}

function walk(value: unknown, depth: number, path: string): StorabilityProblem | null {
  if (value === null || typeof value === 'boolean') return null;
  if (typeof value === 'number') {
    return Number.isFinite(value) ? null : { code: 'invalid_op', message: `${path} is not a finite number` };
  }
  if (typeof value === 'string') {
    return hasLoneSurrogate(value)
      ? { code: 'invalid_op', message: `${path} holds a string with a lone surrogate` }
      : null;
  }
  if (typeof value !== 'object') {
    return { code: 'invalid_op', message: `${path} is not a JSON value` };
  }
  if (depth > MAX_PAYLOAD_DEPTH) {
    return {
      code: 'payload_too_large',
      message: `payload nests objects and arrays deeper than ${MAX_PAYLOAD_DEPTH} levels (Convex allows ${CONVEX_LIMITS.nestingDepth} per document)`,
    };
  }
  if (Array.isArray(value)) {
    if (value.length > CONVEX_LIMITS.arrayElements) {
      return {
        code: 'payload_too_large',
        message: `${path} has ${value.length} elements; Convex arrays hold at most ${CONVEX_LIMITS.arrayElements}`,
      };
    }
    for (let i = 0; i < value.length; i++) {
      const problem = walk(value[i], depth + 1, `${path}[${i}]`);
      if (problem !== null) return problem;
    }
    return null;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) {
    return { code: 'invalid_op', message: `${path} is not a plain JSON object` };
  }
  const entries = Object.entries(value);
  if (entries.length > CONVEX_LIMITS.objectFields) {
    return {
      code: 'payload_too_large',
      message: `${path} has ${entries.length} fields; Convex objects hold at most ${CONVEX_LIMITS.objectFields}`,
    };
  }
  for (const [key, child] of entries) {
    const keyProblem = fieldNameProblem(key);
    if (keyProblem !== null) return { code: 'invalid_op', message: `${path}: ${keyProblem}` };
    const problem = walk(child, depth + 1, `${path}.${key}`);
    if (problem !== null) return problem;
  }
  return null;
}

function fieldNameProblem(key: string): string | null {
  if (key.length === 0) return 'an empty field name cannot be stored in Convex';
  if (key.length > CONVEX_LIMITS.fieldNameLength) {
    return `field name longer than ${CONVEX_LIMITS.fieldNameLength} chars cannot be stored in Convex`;
  }
  if (key.startsWith('$')) return `field name ${JSON.stringify(key)} starts with '$', which Convex reserves`;
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    if (code < 0x20 || code >= 0x7f) {
      return `field name ${JSON.stringify(key)} has a char Convex refuses (only printable ASCII)`;
    }
  }
  return null;
}

function hasLoneSurrogate(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
      return true;
    }
    if (code >= 0xdc00 && code <= 0xdfff) return true;
  }
  return false;
}

/** Size of a document as Convex counts it against `documentBytes`, system fields included. */
export function storedDocumentBytes(document: Record<string, unknown>): number {
  return getDocumentSize(document as Record<string, Value>);
}
