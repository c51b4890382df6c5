/**
 * Failures of the gateway as OR3 sees them: OR3's code and status, the
 * gateway's `Retry-After` kept, and a deadline on every request.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { H3Error } from 'h3';
import { createOr3SyncAdapter } from '../src/adapter.js';
import { resolveConfig } from '../src/config.js';
import { GatewayClient } from '../src/gateway-client.js';
import { eventFor, testUserOf } from './support/gateway.js';

/** A stand-in gateway answering each path as told (`hang` never answers). */
let server: Server;
let baseUrl: string;
const answers: Record<string, { status: number; headers?: Record<string, string>; body?: unknown } | 'hang'> = {};
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });

beforeAll(async () => {
  server = createServer((req, res) => {
    const answer = answers[new URL(req.url ?? '/', 'http://x').pathname];
    if (answer === 'hang') return;
    res.writeHead(answer?.status ?? 404, { 'content-type': 'application/json', ...answer?.headers });
    res.end(JSON.stringify(answer?.body ?? { error: { code: 'not_found', message: 'no' } }));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const adapterWith = (timeoutMs = 5000) =>
  createOr3SyncAdapter({ client: new GatewayClient(resolveConfig({ url: baseUrl, signingKey: privateKey, issuer: 'i', requestTimeoutMs: timeoutMs }, {})), userOf: testUserOf });
const scope = { workspaceId: 'w1' };

async function failure(call: Promise<unknown>): Promise<H3Error> {
  const error = await call.then(() => undefined, (e: unknown) => e);
  expect(error, 'the call should have failed').toBeDefined();
  return error as H3Error;
}

describe('gateway failures in OR3 codes', () => {
  it('a 429 is RATE_LIMITED with the gateway Retry-After on the response', async () => {
    answers['/v1/workspaces/w1/changes'] = { status: 429, headers: { 'retry-after': '7' }, body: { error: { code: 'rate_limited', message: 'slow down' } } };
    const event = eventFor('u');
    const error = await failure(adapterWith().pull(event, { scope, cursor: 0, limit: 10 }));
    expect(error.statusCode).toBe(429);
    expect(error.data).toMatchObject({ code: 'RATE_LIMITED', gatewayCode: 'rate_limited', retryAfter: '7' });
    expect(event.node.res.getHeader('retry-after')).toBe(7);
  });

  it('a 503 (draining, store unavailable) is SERVER_ERROR with Retry-After kept', async () => {
    answers['/v1/workspaces/w1/snapshot'] = { status: 503, headers: { 'retry-after': '2' }, body: { error: { code: 'unavailable', message: 'store down' } } };
    const event = eventFor('u');
    const error = await failure(adapterWith().snapshot!(event, { scope, pageSize: 10 }));
    expect(error.statusCode).toBe(503);
    expect(error.data).toMatchObject({ code: 'SERVER_ERROR', gatewayCode: 'unavailable' });
    expect(event.node.res.getHeader('retry-after')).toBe(2);
  });

  it('an unknown workspace is NOT_FOUND', async () => {
    answers['/v1/workspaces/w1/changes'] = { status: 404, body: { error: { code: 'unknown_workspace', message: 'gone' } } };
    const error = await failure(adapterWith().pull(eventFor('u'), { scope, cursor: 0, limit: 10 }));
    expect(error.statusCode).toBe(404);
    expect(error.data).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('a gateway that does not answer in time is a NETWORK_ERROR (504) at the deadline', async () => {
    answers['/v1/workspaces/w1/changes'] = 'hang';
    const started = Date.now();
    const error = await failure(adapterWith(300).pull(eventFor('u'), { scope, cursor: 0, limit: 10 }));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error.statusCode).toBe(504);
    expect(error.data).toMatchObject({ code: 'NETWORK_ERROR', gatewayCode: 'timeout' });
  });
});
