/**
 * The chat screen of one workspace: threads, the selected thread's messages
 * with their sync state, the composer, the offline switch, the owner's invite
 * field and the dev overlay. Everything shown comes from Dexie through
 * `liveQuery`; writes are plain Dexie writes the engine captures.
 */
import type { Subscription } from 'dexie';
import type { ErrorEvent } from '@or3/sync-client';
import { el, setAttribute, setText } from '../dom.js';
import type { DevSession } from '../dev-session.js';
import { mountDevOverlay, type DevOverlay } from '../dev-overlay/index.js';
import { knownWorkspaces, rememberWorkspaces } from '../known-workspaces.js';
import { NetworkMode } from '../network-mode.js';
import { openChat, type OpenChat } from '../open-chat.js';
import { navigate } from '../routes.js';
import { WorkspaceApi, type WorkspaceInfo } from '../workspace-api.js';
import { MessageList } from './message-list.js';
import { ThreadNav } from './thread-nav.js';
import type { View } from './view.js';

const OVERLAY_OPEN_KEY = 'or3-demo:overlay-open';

export interface ChatView extends View {
  /** Shows another thread of the same workspace. */
  selectThread(threadId: string | null): void;
  readonly workspaceId: string;
}

export interface ChatViewActions {
  switchWorkspace(): void;
}

export function renderChatView(
  root: HTMLElement,
  session: DevSession,
  workspaceId: string,
  initialThreadId: string | null,
  actions: ChatViewActions,
): ChatView {
  const api = new WorkspaceApi(session.getToken);
  const network = new NetworkMode();
  let workspace: WorkspaceInfo | undefined = knownWorkspaces(session.userId).find((w) => w.workspace_id === workspaceId);
  let chat: OpenChat | null = null;
  let overlay: DevOverlay | null = null;
  let threadId = initialThreadId;
  let threadsSubscription: Subscription | null = null;
  let messagesSubscription: Subscription | null = null;
  let destroyed = false;
  const cleanups: (() => void)[] = [];

  // Header.
  const workspaceName = el('span', { attrs: { class: 'workspace-name' } });
  const offlineSwitch = el('input', {
    attrs: { type: 'checkbox', role: 'switch', id: 'work-offline' },
    on: { change: () => (network.workOffline = offlineSwitch.checked) },
  });
  const networkLabel = el('span');
  const networkChip = el(
    'span',
    { attrs: { class: 'chip', 'data-testid': 'network-state', role: 'status' } },
    el('span', { attrs: { class: 'chip-dot', 'aria-hidden': 'true' } }, '●'),
    networkLabel,
  );
  const overlayButton = el(
    'button',
    { attrs: { type: 'button', 'aria-controls': 'dev-overlay', 'aria-pressed': 'false' }, on: { click: () => overlay?.toggle() } },
    'Sync overlay',
  );
  const header = el(
    'header',
    { attrs: { class: 'topbar' } },
    el('div', { attrs: { class: 'brand' } }, 'or3 chat'),
    workspaceName,
    el('div', { attrs: { class: 'spacer' } }),
    networkChip,
    el('label', { attrs: { class: 'switch', for: 'work-offline' } }, offlineSwitch, 'Work offline'),
    overlayButton,
    el(
      'span',
      { attrs: { class: 'user' } },
      el('span', { attrs: { class: 'visually-hidden' } }, 'Signed in as '),
      el('strong', {}, session.userId),
    ),
    el('button', { attrs: { type: 'button', class: 'link' }, on: { click: actions.switchWorkspace } }, 'Switch workspace'),
  );

  // The workspace's id (to share) and, for its owner, the invite field.
  const inviteInput = el('input', { attrs: { id: 'invite-user', name: 'user', required: true, autocomplete: 'off' } });
  const inviteStatus = el('p', { attrs: { class: 'hint', role: 'status' } });
  const inviteForm = el(
    'form',
    { attrs: { class: 'invite', hidden: true }, on: { submit: (event) => void onInvite(event) } },
    el('label', { attrs: { for: 'invite-user' } }, 'Invite user'),
    el('div', { attrs: { class: 'row' } }, inviteInput, el('button', { attrs: { type: 'submit' } }, 'Invite')),
    inviteStatus,
  );
  const workspacePanel = el(
    'section',
    { attrs: { class: 'workspace-panel', 'aria-labelledby': 'workspace-heading' } },
    el('h2', { attrs: { id: 'workspace-heading' } }, 'Workspace'),
    el('p', { attrs: { class: 'hint' } }, 'Id to share: ', el('code', { attrs: { 'data-testid': 'workspace-id' } }, workspaceId)),
    inviteForm,
  );

  // Notices (membership problems, failures to open).
  const noticeText = el('span');
  const retryButton = el('button', { attrs: { type: 'button' }, on: { click: () => void retry() } }, 'Retry');
  const notice = el('div', { attrs: { class: 'notice', role: 'alert', hidden: true } }, noticeText, retryButton);

  // Threads, messages, composer.
  const threadNav = new ThreadNav({
    select: (id) => navigate({ workspaceId, threadId: id }),
    create: (title) => void createThread(title),
  });
  const threadTitle = el('h2', { attrs: { class: 'thread-title', id: 'thread-title' } }, 'Opening workspace…');
  let messageList = newMessageList();
  const composerInput = el('textarea', {
    attrs: { id: 'composer', name: 'text', rows: 2, required: true, disabled: true, 'aria-describedby': 'composer-hint' },
    on: {
      keydown: (event) => {
        if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          composer.requestSubmit();
        }
      },
    },
  });
  const sendButton = el('button', { attrs: { type: 'submit', disabled: true } }, 'Send');
  const composer = el(
    'form',
    { attrs: { class: 'composer' }, on: { submit: (event) => void onSend(event) } },
    el('label', { attrs: { for: 'composer', class: 'visually-hidden' } }, 'Message'),
    composerInput,
    sendButton,
    el('p', { attrs: { id: 'composer-hint', class: 'hint' } }, 'Enter sends, Shift+Enter adds a line.'),
  );
  const messagePane = el('main', { attrs: { class: 'conversation', 'aria-labelledby': 'thread-title' } }, threadTitle, messageList.element, composer);
  const overlayHost = el('aside', { attrs: { class: 'overlay-host', id: 'dev-overlay', hidden: true } });
  const sidebar = el('div', { attrs: { class: 'sidebar' } }, workspacePanel, threadNav.element);
  const layout = el('div', { attrs: { class: 'layout' } }, sidebar, messagePane, overlayHost);
  root.replaceChildren(el('div', { attrs: { class: 'app' } }, header, notice, layout));

  showWorkspace();
  showNetwork();
  cleanups.push(network.subscribe(onNetworkChange));
  void open();
  void refreshWorkspace();

  async function open(): Promise<void> {
    try {
      chat = await openChat(workspaceId, session);
    } catch (failure) {
      showNotice(`Cannot open the workspace's database: ${(failure as Error).message}`, false);
      return;
    }
    if (destroyed) {
      await chat.close();
      return;
    }
    const { engine, store, telemetry } = chat;
    // Paused before the loops start: an offline device never touches the network.
    if (!network.online) engine.pause();
    cleanups.push(engine.on('sync.error:action', onSyncError));
    cleanups.push(
      engine.on('sync.stats:action', (stats) => {
        if (!stats.paused && !notice.hidden && noticeText.dataset.kind === 'sync') hideNotice();
      }),
    );
    overlay = mountDevOverlay({
      engine,
      telemetry,
      target: overlayHost,
      open: localStorage.getItem(OVERLAY_OPEN_KEY) === '1',
      onVisibilityChange: showOverlayState,
    });
    showOverlayState(overlay.visible);
    engine.start();
    threadsSubscription = store.threads().subscribe({
      next: (threads) => {
        threadNav.update(threads, threadId);
        showThreadTitle();
        if (!threadId && threads[0]) navigate({ workspaceId, threadId: threads[0].id }, true);
      },
      error: (failure: unknown) => showNotice(`Cannot read threads: ${String(failure)}`, false),
    });
    showThread();
  }

  function newMessageList(): MessageList {
    return new MessageList('Messages', {
      edit: (id, text) => void chat?.store.editMessage(id, text),
      remove: (id) => void chat?.store.deleteMessage(id),
      discardFailed: (message) => void chat?.store.discardFailedWrites(message),
    });
  }

  function showThread(): void {
    messagesSubscription?.unsubscribe();
    messagesSubscription = null;
    const next = newMessageList();
    messageList.destroy();
    messageList.element.replaceWith(next.element);
    messageList = next;
    threadNav.select(threadId);
    showThreadTitle();
    if (!threadId) messageList.setEmptyText('Messages appear here once a thread exists.');
    const enabled = chat !== null && threadId !== null;
    composerInput.disabled = !enabled;
    sendButton.disabled = !enabled;
    if (!chat || !threadId) return;
    messagesSubscription = chat.store.messages(threadId).subscribe({
      next: (messages) => messageList.update(messages),
      error: (failure: unknown) => showNotice(`Cannot read messages: ${String(failure)}`, false),
    });
  }

  function showThreadTitle(): void {
    if (!chat) return;
    const title = threadId ? (threadNav.titleOf(threadId) ?? 'Loading thread…') : 'No thread yet: start one on the left';
    setText(threadTitle, title);
    messageList.setLabel(`Messages in ${title}`);
  }

  function showWorkspace(): void {
    setText(workspaceName, workspace?.name ?? 'Workspace');
    inviteForm.hidden = workspace?.role !== 'owner';
  }

  function showNetwork(): void {
    offlineSwitch.checked = network.workOffline;
    const state = !network.browserOnline ? 'no network' : network.workOffline ? 'offline' : 'online';
    setText(networkLabel, state === 'online' ? 'Online' : state === 'offline' ? 'Offline' : 'No network');
    setAttribute(networkChip, 'data-state', state);
  }

  function showOverlayState(visible: boolean): void {
    overlayHost.hidden = !visible;
    setAttribute(overlayButton, 'aria-pressed', visible ? 'true' : 'false');
    if (visible) localStorage.setItem(OVERLAY_OPEN_KEY, '1');
    else localStorage.removeItem(OVERLAY_OPEN_KEY);
  }

  function onNetworkChange(online: boolean): void {
    showNetwork();
    if (!chat) return;
    if (!online) chat.engine.pause();
    else if (chat.engine.isPaused) chat.engine.resume();
    if (online) void refreshWorkspace();
  }

  function onSyncError(event: ErrorEvent): void {
    if (!event.paused) return;
    const message =
      event.code === 'forbidden'
        ? `${session.userId} is not a member of this workspace (or may not write to it). Ask its owner to invite “${session.userId}”, then retry.`
        : event.code === 'not_found'
          ? 'There is no workspace with this id on the server.'
          : `Sync stopped: ${event.message}`;
    showNotice(message, true, 'sync');
  }

  async function retry(): Promise<void> {
    hideNotice();
    await refreshWorkspace();
    if (chat && network.online) chat.engine.resume();
  }

  async function refreshWorkspace(): Promise<void> {
    try {
      const workspaces = await api.list();
      rememberWorkspaces(session.userId, workspaces);
      workspace = workspaces.find((w) => w.workspace_id === workspaceId) ?? workspace;
      if (!destroyed) showWorkspace();
    } catch {
      // Offline: the cached name and role stay.
    }
  }

  async function createThread(title: string): Promise<void> {
    if (!chat) return;
    const id = await chat.store.createThread(title, session.userId);
    navigate({ workspaceId, threadId: id });
  }

  async function onSend(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const text = composerInput.value.trim();
    if (!chat || !threadId || !text) return;
    composerInput.value = '';
    messageList.revealEnd();
    await chat.store.sendMessage(threadId, session.userId, text);
  }

  async function onInvite(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const user = inviteInput.value.trim();
    if (!user) return;
    setText(inviteStatus, '');
    try {
      await api.setMember(workspaceId, user, 'editor');
      inviteInput.value = '';
      setText(inviteStatus, `${user} can now join.`);
    } catch (failure) {
      setText(inviteStatus, `Cannot invite ${user}: ${(failure as Error).message}`);
    }
  }

  function showNotice(text: string, canRetry: boolean, kind = 'open'): void {
    setText(noticeText, text);
    noticeText.dataset.kind = kind;
    retryButton.hidden = !canRetry;
    notice.hidden = false;
  }

  function hideNotice(): void {
    notice.hidden = true;
  }

  return {
    workspaceId,
    selectThread(next) {
      if (next === threadId) return;
      threadId = next;
      showThread();
    },
    async destroy() {
      destroyed = true;
      threadsSubscription?.unsubscribe();
      messagesSubscription?.unsubscribe();
      messageList.destroy();
      for (const cleanup of cleanups) cleanup();
      overlay?.destroy();
      network.dispose();
      root.replaceChildren();
      await chat?.close();
    },
  };
}
