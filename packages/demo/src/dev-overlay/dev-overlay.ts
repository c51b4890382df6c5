/**
 * The dev overlay: a panel showing what one `SyncEngine` is doing, which any
 * app can mount. Connection state, pending op count, cursor and server
 * version, last push and pull, retry and error counts, recent conflicts with
 * both stamps, the latest `_or3sync_runs` rows, and a button that forces a rescan.
 *
 * Mount it when the workspace opens (hidden if you like) so its counters see
 * every event from the start; `toggle()` shows and hides it.
 */
import { liveQuery, type Subscription } from 'dexie';
import { RUNS_TABLE, type ConflictEvent, type Stamp, type SyncEngine, type SyncRunRow, type SyncStats } from '@or3/sync-client';
import { el, setAttribute, setText } from '../dom.js';
import type { ProviderTelemetry } from './provider-telemetry.js';
import { injectOverlayStyles } from './overlay-styles.js';

export interface DevOverlayOptions {
  engine: SyncEngine;
  /** From `observeProvider()`: adds server version and subscription state. */
  telemetry?: ProviderTelemetry;
  /** Where the panel goes; without one it floats over the page's corner. */
  target?: HTMLElement;
  /** Visible from the start. Default false. */
  open?: boolean;
  /** Conflicts and `_or3sync_runs` rows shown. Defaults 10 and 8. */
  maxConflicts?: number;
  maxRuns?: number;
  /** Called when the panel is shown or hidden (by `toggle()`, `show()`, `hide()` or its close button). */
  onVisibilityChange?: (visible: boolean) => void;
}

/** A mounted overlay. */
export interface DevOverlay {
  readonly element: HTMLElement;
  readonly visible: boolean;
  show(): void;
  hide(): void;
  /** Shows or hides the panel; returns whether it is now visible. */
  toggle(): boolean;
  /** Removes the panel and stops listening. */
  destroy(): void;
}

/** A conflict with the time the overlay heard of it. */
interface SeenConflict extends ConflictEvent {
  at: number;
}

let nextOverlayId = 0;

/** Mounts the overlay for `options.engine`. */
export function mountDevOverlay(options: DevOverlayOptions): DevOverlay {
  injectOverlayStyles();
  const { engine, telemetry } = options;
  const maxConflicts = options.maxConflicts ?? 10;
  const maxRuns = options.maxRuns ?? 8;
  const headingId = `or3-dev-overlay-title-${++nextOverlayId}`;

  const fields = {
    connection: el('dd', { attrs: { 'data-field': 'connection' } }),
    tab: el('dd', { attrs: { 'data-field': 'tab' } }),
    pending: el('dd', { attrs: { 'data-field': 'pending' } }),
    cursor: el('dd', { attrs: { 'data-field': 'cursor' } }),
    serverVersion: el('dd', { attrs: { 'data-field': 'server-version' } }),
    lastPush: el('dd', { attrs: { 'data-field': 'last-push' } }),
    lastPull: el('dd', { attrs: { 'data-field': 'last-pull' } }),
    retries: el('dd', { attrs: { 'data-field': 'retries' } }),
    errors: el('dd', { attrs: { 'data-field': 'errors' } }),
    device: el('dd', { attrs: { 'data-field': 'device', class: 'or3-overlay-mono' } }, engine.deviceId),
  };
  const fact = (label: string, value: HTMLElement) => [el('dt', {}, label), value];
  const rescanStatus = el('span', { attrs: { class: 'or3-overlay-note', role: 'status' } });
  const rescanButton = el('button', { attrs: { type: 'button' }, on: { click: () => void forceRescan() } }, 'Force rescan');
  const conflictList = el('ol', { attrs: { class: 'or3-overlay-conflicts', 'data-list': 'conflicts' } });
  const conflictsEmpty = el('p', { attrs: { class: 'or3-overlay-note' } }, 'None yet.');
  const runsBody = el('tbody');
  const closeButton = el(
    'button',
    { attrs: { type: 'button', class: 'or3-overlay-close', 'aria-label': 'Close sync overlay' }, on: { click: () => hide() } },
    '×',
  );

  const element = el(
    'section',
    {
      attrs: {
        class: options.target ? 'or3-overlay' : 'or3-overlay or3-overlay--floating',
        'aria-labelledby': headingId,
        hidden: !options.open,
      },
    },
    el('header', {}, el('h2', { attrs: { id: headingId } }, 'Sync overlay'), closeButton),
    el('dl', { attrs: { class: 'or3-overlay-facts' } },
      ...fact('Connection', fields.connection),
      ...fact('This tab', fields.tab),
      ...fact('Pending ops', fields.pending),
      ...fact('Cursor', fields.cursor),
      ...fact('Server version', fields.serverVersion),
      ...fact('Last push', fields.lastPush),
      ...fact('Last pull', fields.lastPull),
      ...fact('Retries', fields.retries),
      ...fact('Errors', fields.errors),
      ...fact('Device', fields.device),
    ),
    el('div', { attrs: { class: 'or3-overlay-actions' } }, rescanButton, rescanStatus),
    el('h3', {}, 'Recent conflicts'),
    conflictsEmpty,
    conflictList,
    el('h3', {}, 'Sync runs'),
    el('table', { attrs: { class: 'or3-overlay-runs', 'data-list': 'sync-runs' } },
      el('thead', {}, el('tr', {}, ...['Started', 'Took', 'Pushed', 'Pulled', 'Conflicts', 'Error'].map((h) => el('th', { attrs: { scope: 'col' } }, h)))),
      runsBody,
    ),
  );
  (options.target ?? document.body).append(element);

  // `sync.retry:action` and `sync.error:action` events since mount.
  let retries = 0;
  let lastRetry: { code: string; delayMs: number; at: number } | null = null;
  let errors = 0;
  let lastError: { code: string; message: string; paused: boolean } | null = null;
  let rescanning = false;
  let stats: SyncStats | null = null;
  let latestRunError: string | null = null;
  const conflicts: SeenConflict[] = [];

  const stopListening = [
    engine.on('sync.retry:action', (event) => {
      retries += 1;
      lastRetry = { code: event.code, delayMs: event.delayMs, at: Date.now() };
      render();
    }),
    engine.on('sync.error:action', (event) => {
      errors += 1;
      lastError = { code: event.code, message: event.message, paused: event.paused === true };
      render();
    }),
    engine.on('sync.conflict:action:detected', (event) => {
      conflicts.unshift({ ...event, at: Date.now() });
      conflicts.length = Math.min(conflicts.length, maxConflicts);
      renderConflicts();
    }),
    engine.on('sync.stats:action', (event) => {
      stats = event;
      render();
    }),
    engine.on('sync.status:action', () => render()),
    telemetry?.onChange(() => render()) ?? (() => {}),
  ];
  const runs: Subscription = liveQuery(() =>
    engine.db.table<SyncRunRow, number>(RUNS_TABLE).orderBy('id').reverse().limit(maxRuns).toArray(),
  ).subscribe({ next: renderRuns, error: () => {} });
  // Pending count and cursor live in the database (other tabs write the outbox too).
  const liveStats: Subscription = liveQuery(() => engine.stats()).subscribe({
    next: (value) => {
      stats = value;
      render();
    },
    error: () => {},
  });
  // "3 s ago" ages, and leadership changes without an event.
  const timer = setInterval(() => render(), 1000);

  async function forceRescan(): Promise<void> {
    rescanning = true;
    setText(rescanStatus, 'Rescanning…');
    render();
    const result = await engine.rescan();
    rescanning = false;
    setText(rescanStatus, result.error ? `Rescan failed: ${result.error}` : `Rescanned: ${result.pulled} records`);
    render();
  }

  /** The engine's status (the client's one status machine), in words; `state` picks the dot's colour. */
  function connectionState(): { text: string; state: string } {
    if (!engine.isLeader && !engine.isPaused && navigator.onLine) return { text: 'idle: another tab syncs', state: 'follower' };
    const status = engine.status;
    const code = status.lastError?.code ?? latestRunError ?? 'unknown';
    switch (status.state) {
      case 'offline':
        return { text: navigator.onLine ? 'offline (server unreachable)' : 'offline (no network)', state: 'offline' };
      case 'refused':
        return { text: `paused: ${code}`, state: 'error' };
      case 'paused':
        return { text: 'paused (working offline)', state: 'offline' };
      case 'read_only':
        return { text: 'read only: writes refused, reads go on', state: 'offline' };
      case 'attention':
        return { text: `attention: ${status.failed} failed (${code})`, state: 'error' };
      case 'held':
        return { text: `held: ${status.held} wait for the server's --tables (${code})`, state: 'error' };
      case 'error':
        return { text: `retrying: ${telemetry?.lastFailure?.code ?? code}`, state: 'error' };
      case 'connecting':
      case 'syncing':
      case 'stale':
        return { text: status.state, state: 'online' };
      case 'synced':
        return { text: status.channel === 'up' ? 'synced, subscribed' : 'synced', state: 'online' };
    }
  }

  function render(): void {
    const connection = connectionState();
    setText(fields.connection, connection.text);
    setAttribute(fields.connection, 'data-state', connection.state);
    setText(fields.tab, engine.isLeader ? 'leader (syncs)' : 'follower');
    setAttribute(fields.tab, 'data-leader', engine.isLeader ? 'true' : 'false');
    if (stats) {
      setText(fields.pending, stats.failed > 0 ? `${stats.pending} (${stats.failed} failed)` : String(stats.pending));
      setAttribute(fields.pending, 'data-value', stats.pending);
      setText(fields.cursor, stats.cursor === null ? '— (not bootstrapped)' : String(stats.cursor));
      setText(fields.lastPush, timeAgo(stats.lastPushAt));
      setText(fields.lastPull, timeAgo(stats.lastPullAt));
    }
    setText(fields.serverVersion, telemetry?.serverVersion == null ? '—' : String(telemetry.serverVersion));
    setText(fields.retries, lastRetry ? `${retries} (last: ${lastRetry.code}, waited ${lastRetry.delayMs} ms)` : String(retries));
    setAttribute(fields.retries, 'data-value', retries);
    setText(fields.errors, lastError ? `${errors} (last: ${lastError.code})` : String(errors));
    setAttribute(fields.errors, 'data-value', errors);
    rescanButton.disabled = rescanning || engine.isPaused || !engine.isLeader;
    rescanButton.title = engine.isLeader ? '' : 'Only the tab that syncs can rescan';
  }

  function renderConflicts(): void {
    conflictsEmpty.hidden = conflicts.length > 0;
    conflictList.replaceChildren(
      ...conflicts.map((c) =>
        el('li', { attrs: { 'data-table': c.tableName, 'data-pk': c.pk, 'data-winner': c.winner } },
          el('div', {}, el('strong', {}, `${c.tableName}/${c.pk}`), ` ${c.winner} wins · ${clockTime(c.at)}`),
          stampLine('local', c.local, c.winner === 'local'),
          stampLine('remote', c.remote, c.winner === 'remote'),
        ),
      ),
    );
  }

  function renderRuns(rows: SyncRunRow[]): void {
    latestRunError = rows[0]?.error ?? null;
    render();
    runsBody.replaceChildren(
      ...rows.map((run) =>
        el('tr', { attrs: { 'data-error': run.error ?? undefined } },
          el('td', {}, clockTime(run.started_at)),
          el('td', {}, run.finished_at === null ? '…' : `${run.finished_at - run.started_at} ms`),
          el('td', {}, String(run.pushed)),
          el('td', {}, String(run.pulled)),
          el('td', {}, String(run.conflicts)),
          el('td', {}, run.error ?? ''),
        ),
      ),
    );
  }

  function show(): void {
    setVisible(true);
  }

  function hide(): void {
    setVisible(false);
  }

  function setVisible(visible: boolean): void {
    if (element.hidden === !visible) return;
    element.hidden = !visible;
    options.onVisibilityChange?.(visible);
  }

  render();
  renderConflicts();

  return {
    element,
    get visible() {
      return !element.hidden;
    },
    show,
    hide,
    toggle() {
      setVisible(element.hidden);
      return !element.hidden;
    },
    destroy() {
      clearInterval(timer);
      runs.unsubscribe();
      liveStats.unsubscribe();
      for (const stop of stopListening) stop();
      element.remove();
    },
  };
}

function stampLine(side: 'local' | 'remote', stamp: Stamp, won: boolean): HTMLElement {
  return el(
    'div',
    { attrs: { class: 'or3-overlay-stamp', 'data-side': side, 'data-won': won ? 'true' : 'false' } },
    el('span', { attrs: { class: 'or3-overlay-side' } }, side),
    el('span', { attrs: { class: 'or3-overlay-mono', title: `clock ${stamp.clock}, hlc ${stamp.hlc}, op ${stamp.op_id ?? 'unknown'}` } },
      `clock ${stamp.clock} · ${stamp.hlc} · op ${stamp.op_id ? stamp.op_id.slice(0, 8) : '?'}`,
    ),
  );
}

function clockTime(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

function timeAgo(ms: number | null): string {
  if (ms === null) return 'never';
  const seconds = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return `${clockTime(ms)} (${seconds} s ago)`;
}
