/**
 * The real or3-sync binary (the client package's launcher) started with the
 * public half of an RSA key generated here, and the provider's settings that
 * sign tokens with the private half.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEvent, type H3Event } from 'h3';
import { startServer, type TestServer } from '../../../client/test/support/server.js';
import { resolveConfig, type Or3SyncConfig } from '../../src/config.js';
import { GatewayClient } from '../../src/gateway-client.js';

export const ISSUER = 'https://or3.test';

export interface TestGateway {
  server: TestServer;
  config: Or3SyncConfig;
  client: GatewayClient;
  stop(): Promise<void>;
}

/** Starts the gateway verifying tokens signed by a fresh key; `extraArgs` go to `or3-sync serve`. */
export async function startGateway(extraArgs: string[] = []): Promise<TestGateway> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const keyFile = join(mkdtempSync(join(tmpdir(), 'or3-provider-key-')), 'public.pem');
  writeFileSync(keyFile, publicKey);
  const server = await startServer(['--jwt-public-key', keyFile, '--jwt-issuer', ISSUER, ...extraArgs]);
  const config = resolveConfig({ url: server.baseUrl, signingKey: privateKey, issuer: ISSUER }, {});
  return { server, config, client: new GatewayClient(config), stop: () => server.stop() };
}

/** An h3 request event whose session user (as the test adapters read it) is `userId`. */
export function eventFor(userId: string): H3Event {
  const req = new IncomingMessage(new Socket());
  const event = createEvent(req, new ServerResponse(req));
  event.context.userId = userId;
  return event;
}

/** The session user of an `eventFor` event. */
export const testUserOf = async (event: H3Event): Promise<string> => event.context.userId as string;
