/**
 * `ActiveWorkspace`: the one engine an app has open at a time. Switching
 * opens the next workspace only after the previous engine is closed, and
 * every composable following `engine` drops its subscriptions synchronously
 * when it changes (before the database closes), so nothing leaks from one
 * workspace into the next.
 */
import { shallowRef, type ShallowRef } from 'vue';
import type { RemovedUserData, SignOutOptions, SyncEngine } from '@or3/sync-client';

/** How the app opens and closes a workspace's engine. */
export interface WorkspaceOpener {
  /** Opens `workspaceId` (usually `openWorkspace({ workspaceId, provider, schema })`). */
  open(workspaceId: string): Promise<SyncEngine>;
  /** Starts the loops after opening; `engine.start()` by default. */
  start?(engine: SyncEngine): void;
  /** Closes an engine that is switched away from; `engine.close()` by default. */
  close?(engine: SyncEngine): Promise<void>;
}

/** The active workspace and its engine, shared by every component of the app. */
export class ActiveWorkspace {
  /** The open engine; null while none is open (or the next one is still opening). */
  readonly engine: ShallowRef<SyncEngine | null> = shallowRef(null);
  /** The workspace asked for last (set at once, before its engine is open). */
  readonly workspaceId: ShallowRef<string | null> = shallowRef(null);
  /** Why the last `switchTo` could not open its workspace. */
  readonly openError: ShallowRef<Error | null> = shallowRef(null);
  private switching: Promise<void> = Promise.resolve();

  constructor(private readonly opener: WorkspaceOpener) {}

  /**
   * Closes the open engine and opens `workspaceId` (null: none). Switches run one
   * after another; a switch overtaken by a later one closes what it opened.
   * Resolves when this switch is done; never rejects (see `openError`).
   */
  switchTo(workspaceId: string | null): Promise<void> {
    this.workspaceId.value = workspaceId;
    const next = this.switching.then(() => this.apply(workspaceId));
    this.switching = next;
    return next;
  }

  /** Closes the open engine (same as `switchTo(null)`). */
  close(): Promise<void> {
    return this.switchTo(null);
  }

  /**
   * Signs the user out of the active workspace (`engine.signOut(options)`: what is pending is
   * pushed first, then the workspace's local data goes) and clears the active workspace.
   * Resolves with what the database kept (null when no workspace was open). When the sign-out
   * refuses (`UnsyncedWritesError`, with the count), the engine stays active and running, and
   * the promise rejects with that error.
   */
  signOut(options?: SignOutOptions): Promise<RemovedUserData | null> {
    const next = this.switching.then(() => this.applySignOut(options));
    this.switching = next.then(
      () => {},
      () => {},
    );
    return next;
  }

  private async apply(workspaceId: string | null): Promise<void> {
    const current = this.engine.value;
    if (current && current.workspaceId === workspaceId) return;
    if (this.workspaceId.value !== workspaceId) return; // a later switch is queued: skip straight to it
    this.openError.value = null;
    if (current) {
      // Subscribers follow `engine` with sync watchers: they let go before the database closes.
      this.engine.value = null;
      await this.closeEngine(current);
    }
    if (workspaceId === null) return;
    let engine: SyncEngine;
    try {
      engine = await this.opener.open(workspaceId);
    } catch (error) {
      this.openError.value = error instanceof Error ? error : new Error(String(error));
      return;
    }
    if (this.workspaceId.value !== workspaceId) {
      await this.closeEngine(engine);
      return;
    }
    // Published first, so composables listen before the loops emit anything.
    this.engine.value = engine;
    if (this.opener.start) this.opener.start(engine);
    else engine.start();
  }

  private async applySignOut(options: SignOutOptions | undefined): Promise<RemovedUserData | null> {
    const engine = this.engine.value;
    if (!engine) return null;
    // Subscribers let go before the database is deleted.
    this.engine.value = null;
    let left: RemovedUserData;
    try {
      left = await engine.signOut(options);
    } catch (error) {
      this.engine.value = engine;
      if (this.opener.start) this.opener.start(engine);
      else engine.start();
      throw error;
    }
    if (this.workspaceId.value === engine.workspaceId) this.workspaceId.value = null;
    // Signed out, the engine is closed; the app's `close` still releases what it holds (its provider).
    await this.closeEngine(engine);
    return left;
  }

  private closeEngine(engine: SyncEngine): Promise<void> {
    return this.opener.close ? this.opener.close(engine) : engine.close();
  }
}
