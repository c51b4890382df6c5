/**
 * The gateway's workspace and membership routes (PROTOCOL.md section 4,
 * "Workspaces and members"), called on the page's own origin. Syncing itself
 * goes through `@or3/sync-client`, never through here.
 */
import type { GetToken } from '@or3/sync-client';

export type Role = 'owner' | 'editor' | 'viewer';

/** A workspace as the server lists it. */
export interface WorkspaceInfo {
  workspace_id: string;
  name: string;
  role: Role;
}

/** A failed API call, with the server's error code. */
export class WorkspaceApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'WorkspaceApiError';
  }
}

/** Workspace routes for one user. */
export class WorkspaceApi {
  constructor(private readonly getToken: GetToken) {}

  /** Creates a workspace owned by the caller. */
  create(name: string): Promise<WorkspaceInfo> {
    return this.call<WorkspaceInfo>('POST', '/v1/workspaces', { name });
  }

  /** The caller's workspaces. */
  async list(): Promise<WorkspaceInfo[]> {
    return (await this.call<{ workspaces: WorkspaceInfo[] }>('GET', '/v1/workspaces')).workspaces;
  }

  /** Gives `userId` a role in the workspace (owners only). */
  async setMember(workspaceId: string, userId: string, role: Role): Promise<void> {
    const path = `/v1/workspaces/${encodeURIComponent(workspaceId)}/members/${encodeURIComponent(userId)}`;
    await this.call('PUT', path, { role });
  }

  private async call<T>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await this.send(method, path, body, false);
      if (response.status === 401) response = await this.send(method, path, body, true);
    } catch {
      throw new WorkspaceApiError('network_error', 'the server cannot be reached', 0);
    }
    const text = await response.text();
    const parsed = parseJson(text);
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      throw new WorkspaceApiError(error?.code ?? 'http_error', error?.message ?? `HTTP ${response.status}`, response.status);
    }
    return parsed as T;
  }

  private async send(method: string, path: string, body: unknown, forceRefresh: boolean): Promise<Response> {
    const token = await this.getToken({ forceRefresh });
    return fetch(path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }
}

function parseJson(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : null;
  } catch {
    return null;
  }
}
