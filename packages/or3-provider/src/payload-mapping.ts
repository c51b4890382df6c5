/**
 * Rows between OR3's wire and the gateway's: the fields OR3 keeps local or
 * names differently, and the row's own `hlc` in each side's spelling.
 */
import { toOr3Hlc } from './hlc-mapping.js';

type Row = Record<string, unknown>;

const isRow = (value: unknown): value is Row => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A pushed payload as the gateway stores it: `hlc` dropped (the gateway writes
 * the op's stamp into the row, in its own spelling), `file_meta.ref_count`
 * dropped (a per-device count OR3 never syncs), and a `posts.postType` renamed
 * `post_type`, OR3's wire name.
 */
export function toGatewayPayload(tableName: string, payload: unknown): unknown {
  if (!isRow(payload)) return payload;
  const { hlc: _hlc, ...row } = payload;
  if (tableName === 'file_meta') delete row.ref_count;
  if (tableName === 'posts' && 'postType' in row) {
    if (!('post_type' in row)) row.post_type = row.postType;
    delete row.postType;
  }
  return row;
}

/** A stored row as OR3 receives it: its `hlc` in OR3's spelling. */
export function toOr3Payload(payload: unknown): Row {
  if (!isRow(payload)) return {};
  return typeof payload.hlc === 'string' ? { ...payload, hlc: toOr3Hlc(payload.hlc) } : { ...payload };
}
