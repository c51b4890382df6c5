/**
 * What the provider takes from the OR3 app it runs in: the session's user
 * (OR3's `resolveSessionContext`) and the settings (runtime config
 * `or3sync`, then `OR3SYNC_*`), and the one gateway client they make.
 */
import { createError, type H3Event } from 'h3';
import { useRuntimeConfig } from 'nitropack/runtime';
import { resolveSessionContext } from '~~/server/auth/session';
import { resolveConfig } from '../../config.js';
import { GatewayClient } from '../../gateway-client.js';

let client: GatewayClient | undefined;

/** The gateway client, made from the settings at first use. */
export function gatewayClient(): GatewayClient {
  client ??= new GatewayClient(resolveConfig((useRuntimeConfig() as { or3sync?: Record<string, unknown> }).or3sync ?? {}));
  return client;
}

/** The signed-in user of the request, as OR3's session resolved it. */
export async function sessionUserId(event: H3Event): Promise<string> {
  const session = await resolveSessionContext(event);
  if (!session.authenticated || !session.user) throw createError({ statusCode: 401, statusMessage: 'Unauthorized' });
  return session.user.id;
}
