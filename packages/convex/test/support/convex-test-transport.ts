/**
 * A `ConvexTransport` over convex-test: the small adapter that lets the real
 * `ConvexSyncProvider` (and the client engine above it) talk to the Convex
 * functions running in a test. Reactive queries re-run after every mutation
 * made through any transport of the same deployment, as Convex re-runs them
 * after every commit. Tokens come from the provider's broker through
 * `setAuth`; a token `user:<id>` is that user's identity, anything else none.
 */
import type { FunctionReference } from 'convex/server';
import type { ConvexTransport } from '../../src/index.js';
import { newBackend, type Backend } from '../setup.js';

type TokenFetcher = (args: { forceRefreshToken: boolean }) => Promise<string | null | undefined>;

/** One convex-test backend shared by several clients, with change notification. */
export class TestDeployment {
  readonly backend: Backend = newBackend();
  private readonly watchers = new Set<() => void>();
  /** Mutations and queries served, per function name, to see what providers send. */
  readonly calls: Array<{ kind: 'query' | 'mutation'; args: Record<string, unknown> }> = [];

  /** A new client connection. */
  connect(): TestTransport {
    return new TestTransport(this);
  }

  /** Re-runs every live query, as a commit does. */
  committed(): void {
    for (const watcher of [...this.watchers]) watcher();
  }

  watch(rerun: () => void): () => void {
    this.watchers.add(rerun);
    return () => this.watchers.delete(rerun);
  }
}

/** One client's connection to a `TestDeployment`. */
export class TestTransport implements ConvexTransport {
  private fetchToken: TokenFetcher | null = null;
  private onAuthChange: ((isAuthenticated: boolean) => void) | undefined;
  /** Set to make the next token refresh forced, as Convex does after a refused token. */
  forceRefreshNext = false;
  /** Fails the next mutation with this error, once (a dropped connection, say). */
  failNextMutation: Error | null = null;

  constructor(private readonly deployment: TestDeployment) {}

  setAuth(fetchToken: TokenFetcher, onChange?: (isAuthenticated: boolean) => void): void {
    this.fetchToken = fetchToken;
    this.onAuthChange = onChange;
  }

  async query(query: FunctionReference<'query'>, args: Record<string, unknown>): Promise<unknown> {
    this.deployment.calls.push({ kind: 'query', args });
    const caller = await this.caller();
    return caller.query(query, args as never);
  }

  async mutation(mutation: FunctionReference<'mutation'>, args: Record<string, unknown>): Promise<unknown> {
    this.deployment.calls.push({ kind: 'mutation', args });
    if (this.failNextMutation !== null) {
      const error = this.failNextMutation;
      this.failNextMutation = null;
      throw error;
    }
    const caller = await this.caller();
    const result = await caller.mutation(mutation, args as never);
    this.deployment.committed();
    return result;
  }

  onUpdate(
    query: FunctionReference<'query'>,
    args: Record<string, unknown>,
    callback: (result: unknown) => unknown,
    onError?: (error: Error) => unknown,
  ): () => void {
    let active = true;
    let running = false;
    let again = false;
    const rerun = async () => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      do {
        again = false;
        try {
          const result = await (await this.caller()).query(query, args as never);
          if (active) callback(result);
        } catch (error) {
          if (active) onError?.(error as Error);
        }
      } while (again && active);
      running = false;
    };
    const unwatch = this.deployment.watch(() => void rerun());
    void rerun();
    return () => {
      active = false;
      unwatch();
    };
  }

  private async caller() {
    const backend = this.deployment.backend;
    if (this.fetchToken === null) return backend;
    const forceRefreshToken = this.forceRefreshNext;
    this.forceRefreshNext = false;
    const token = await this.fetchToken({ forceRefreshToken });
    const userId = typeof token === 'string' && token.startsWith('user:') ? token.slice('user:'.length) : null;
    this.onAuthChange?.(userId !== null);
    return userId === null ? backend : backend.withIdentity({ subject: userId });
  }
}
