/**
 * The push budget the push loop reads (`lastRateLimitRemaining`): a push's
 * answer sets it, answers of other route classes (pulls, snapshots), whose
 * budgets the gateway counts apart, do not.
 */
import { describe, expect, it } from 'vitest';
import { GatewayProvider } from '../src/gateway/gateway-provider.js';

const scope = { workspaceId: 'w1', deviceId: 'd1' };

/** A `fetch` answering each request with the JSON and `RateLimit-Remaining` its path is given. */
function scriptedFetch(answers: Record<string, { body: unknown; remaining: number }>): typeof fetch {
  return async (input) => {
    const url = new URL(String(input));
    const route = url.pathname.split('/').pop()!;
    const answer = answers[route];
    if (!answer) return new Response('{"error":{"code":"not_found","message":"no route"}}', { status: 404 });
    return new Response(JSON.stringify(answer.body), {
      status: 200,
      headers: { 'content-type': 'application/json', 'ratelimit-remaining': String(answer.remaining) },
    });
  };
}

describe('lastRateLimitRemaining', () => {
  it('is the latest push answer\'s budget; a pull\'s larger budget does not replace it', async () => {
    const provider = new GatewayProvider({
      baseUrl: 'http://gateway.test',
      getToken: () => 'token',
      fetch: scriptedFetch({
        push: { body: { results: [], server_version: 0, server_time: 1 }, remaining: 2 },
        changes: { body: { changes: [], next_cursor: 0, has_more: false }, remaining: 500 },
      }),
    });
    expect(provider.lastRateLimitRemaining).toBeNull();
    await provider.push(scope, []);
    expect(provider.lastRateLimitRemaining).toBe(2);
    await provider.pull(scope, 0);
    expect(provider.lastRateLimitRemaining).toBe(2);
  });
});
