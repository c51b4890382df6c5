/**
 * The small endpoint the browser provider asks for a realtime token: a
 * short-lived gateway token for the session's user and the gateway URL to
 * open the WebSocket on. The gateway checks membership itself when the
 * subscription opens, so the token grants nothing the user could not do.
 */
import { defineEventHandler, type H3Event } from 'h3';
import { rethrowForOr3 } from './error-mapping.js';
import type { GatewayClient } from './gateway-client.js';

/** The route the module mounts the handler on. */
export const REALTIME_TOKEN_ROUTE = '/api/or3sync/realtime-token';

export interface RealtimeToken {
  token: string;
  /** Epoch ms. */
  expiresAt: number;
  /** The gateway's base URL as browsers reach it. */
  url: string;
}

export function createRealtimeTokenHandler(clientOf: () => GatewayClient, userOf: (event: H3Event) => Promise<string>) {
  return defineEventHandler(async (event): Promise<RealtimeToken> => {
    try {
      const client = clientOf();
      const { token, expiresAt } = await client.mintToken(await userOf(event));
      return { token, expiresAt, url: client.config.publicUrl };
    } catch (error) {
      return rethrowForOr3(event, error);
    }
  });
}
