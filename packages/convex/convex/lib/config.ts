/**
 * Server configuration of the Convex backend, read from the deployment's
 * environment variables (`npx convex env set NAME value`). Every value has
 * the protocol's default.
 */
import { CONVEX_MAX_PAYLOAD_BYTES } from './convexLimits.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** OR3 Chat's synced tables, each mapped to the payload field that holds its pk. */
export const DEFAULT_TABLES: Readonly<Record<string, string>> = {
  threads: 'id',
  messages: 'id',
  projects: 'id',
  posts: 'id',
  kv: 'id',
  file_meta: 'hash',
  notifications: 'id',
};

/** Everything the functions read from the environment. */
export interface SyncConfig {
  /** Allowed tables, each mapped to its pk field. A `Map`, so `__proto__` is never found. */
  tables: ReadonlyMap<string, string>;
  /** Largest payload in bytes of compact JSON; never above `CONVEX_MAX_PAYLOAD_BYTES`. */
  maxPayloadBytes: number;
  /** How far an HLC may run ahead of server time. */
  maxClockSkewMs: number;
  /** Log entries younger than this always stay (never below one hour). */
  minRetentionMs: number;
  /** A device not seen for this long no longer holds back GC. */
  deviceTtlMs: number;
  /** Tombstones older than this (and below the watermark) lose their payload, never their stamp. */
  tombstoneRetentionMs: number;
  /** Take membership from Clerk organization claims (`org_id`, `org_role`) instead of the members table. */
  membershipFromClaims: boolean;
}

/** Environment variable names, in one place for the README and the tests. */
export const ENV = {
  tables: 'OR3_SYNC_TABLES',
  maxPayloadBytes: 'OR3_SYNC_MAX_PAYLOAD_BYTES',
  maxClockSkewMs: 'OR3_SYNC_MAX_CLOCK_SKEW_MS',
  minRetentionMs: 'OR3_SYNC_MIN_RETENTION_MS',
  deviceTtlMs: 'OR3_SYNC_DEVICE_TTL_MS',
  tombstoneRetentionMs: 'OR3_SYNC_TOMBSTONE_RETENTION_MS',
  membershipFromClaims: 'OR3_SYNC_MEMBERSHIP_FROM_CLAIMS',
} as const;

/** Reads the configuration; a malformed variable is an operator error and throws. */
export function loadSyncConfig(env: Record<string, string | undefined> = process.env): SyncConfig {
  return {
    tables: parseTables(env[ENV.tables]),
    maxPayloadBytes: Math.min(readInteger(env, ENV.maxPayloadBytes, CONVEX_MAX_PAYLOAD_BYTES), CONVEX_MAX_PAYLOAD_BYTES),
    maxClockSkewMs: readInteger(env, ENV.maxClockSkewMs, 5 * MINUTE),
    minRetentionMs: Math.max(readInteger(env, ENV.minRetentionMs, 7 * DAY), HOUR),
    deviceTtlMs: readInteger(env, ENV.deviceTtlMs, 30 * DAY),
    tombstoneRetentionMs: readInteger(env, ENV.tombstoneRetentionMs, 30 * DAY),
    membershipFromClaims: env[ENV.membershipFromClaims] === 'true',
  };
}

function parseTables(raw: string | undefined): ReadonlyMap<string, string> {
  const source: unknown = raw === undefined || raw === '' ? DEFAULT_TABLES : JSON.parse(raw);
  if (typeof source !== 'object' || source === null || Array.isArray(source)) {
    throw new Error(`${ENV.tables} must be a JSON object mapping table names to pk fields`);
  }
  const tables = new Map<string, string>();
  for (const [table, pkField] of Object.entries(source)) {
    if (typeof pkField !== 'string' || pkField === '') {
      throw new Error(`${ENV.tables}: the pk field of ${table} must be a non-empty string`);
    }
    tables.set(table, pkField);
  }
  return tables;
}

function readInteger(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return value;
}
