/** The gateway's JSON shapes this package reads and sends (docs/PROTOCOL.md §4, snake_case). */

export interface GatewayOp {
  op_id: string;
  table_name: string;
  operation: 'put' | 'delete';
  pk: string;
  payload?: unknown;
  clock: number;
  hlc: string;
  device_id: string;
}

export interface GatewayWinner {
  clock: number;
  hlc: string;
  op_id: string;
  server_version: number;
  deleted: boolean;
  payload: unknown;
}

export interface GatewayOpResult {
  op_id: string;
  status: 'applied' | 'duplicate' | 'superseded' | 'rejected';
  server_version?: number;
  winner?: GatewayWinner;
  error?: { code: string; message: string; retryable?: boolean };
}

export interface GatewayPushResponse {
  results: GatewayOpResult[];
  server_version: number;
  server_time: number;
}

export interface GatewayChange {
  server_version: number;
  table_name: string;
  pk: string;
  operation: 'put' | 'delete';
  payload: unknown;
  clock: number;
  hlc: string;
  op_id: string;
  device_id: string;
  committed_at?: number;
}

export interface GatewayChangesPage {
  changes: GatewayChange[];
  cursor: number;
  has_more: boolean;
  oldest_retained_version: number;
}

export interface GatewayRecordVersion {
  table_name: string;
  pk: string;
  payload: unknown;
  deleted: boolean;
  clock: number;
  hlc: string;
  op_id: string;
  server_version: number;
  committed_at: number;
}

export interface GatewaySnapshotPage {
  snapshot_version: number;
  items: GatewayRecordVersion[];
  next_page_token: string | null;
}

export interface GatewayWorkspace {
  workspace_id: string;
  name: string;
  role: 'owner' | 'editor' | 'viewer';
}

export interface GatewayErrorBody {
  error?: { code?: string; message?: string; field?: string; oldest_retained_version?: number };
}
