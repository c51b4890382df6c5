import { describe, expect, it } from 'vitest';
import { Or3SyncConfigError, resolveConfig } from '../src/config.js';

const env = { OR3SYNC_URL: 'http://gw:8787/', OR3SYNC_SIGNING_KEY: '-----BEGIN PRIVATE KEY-----\\nabc\\n-----END PRIVATE KEY-----', OR3SYNC_ISSUER: 'https://chat' };

describe('settings', () => {
  it('come from OR3SYNC_* with defaults, the PEM unescaped and the URL without its trailing slash', () => {
    expect(resolveConfig({}, env)).toEqual({
      url: 'http://gw:8787',
      signingKey: '-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----',
      issuer: 'https://chat',
      keyId: undefined,
      tokenTtlSeconds: 60,
      requestTimeoutMs: 10_000,
      publicUrl: 'http://gw:8787',
    });
  });

  it('runtime config wins over the environment; empty runtime values do not', () => {
    const config = resolveConfig({ url: 'http://other', issuer: '', publicUrl: 'https://gw.example.com', tokenTtlSeconds: 30 }, env);
    expect(config).toMatchObject({ url: 'http://other', issuer: 'https://chat', publicUrl: 'https://gw.example.com', tokenTtlSeconds: 30 });
  });

  it('a missing or malformed setting is refused by name', () => {
    expect(() => resolveConfig({}, { ...env, OR3SYNC_URL: '' })).toThrow(/OR3SYNC_URL/);
    expect(() => resolveConfig({}, { ...env, OR3SYNC_SIGNING_KEY: undefined })).toThrow(/OR3SYNC_SIGNING_KEY/);
    expect(() => resolveConfig({}, { ...env, OR3SYNC_ISSUER: ' ' })).toThrow(Or3SyncConfigError);
    expect(() => resolveConfig({}, { ...env, OR3SYNC_TIMEOUT_MS: 'soon' })).toThrow(/OR3SYNC_TIMEOUT_MS/);
  });
});
