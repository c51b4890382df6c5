/** Second screen: create a workspace, join one by id, or open one of yours. */
import { el, setText } from '../dom.js';
import type { DevSession } from '../dev-session.js';
import { knownWorkspaces, rememberWorkspaces } from '../known-workspaces.js';
import { WorkspaceApi, type WorkspaceInfo } from '../workspace-api.js';
import type { View } from './view.js';

export interface WorkspacePickerActions {
  open(workspaceId: string): void;
  signOut(): void;
}

export function renderWorkspacePickerView(root: HTMLElement, session: DevSession, actions: WorkspacePickerActions): View {
  const api = new WorkspaceApi(session.getToken);
  const status = el('p', { attrs: { class: 'form-error', role: 'alert' } });

  const nameInput = el('input', { attrs: { id: 'create-workspace-name', name: 'workspace-name', required: true, maxlength: 200 } });
  const createForm = el(
    'form',
    { on: { submit: (event) => void onCreate(event) } },
    el('label', { attrs: { for: 'create-workspace-name' } }, 'New workspace name'),
    el('div', { attrs: { class: 'row' } }, nameInput, el('button', { attrs: { type: 'submit' } }, 'Create workspace')),
  );

  const idInput = el('input', {
    attrs: { id: 'join-workspace-id', name: 'workspace-id', required: true, spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'join-hint' },
  });
  const joinForm = el(
    'form',
    { on: { submit: onJoin } },
    el('label', { attrs: { for: 'join-workspace-id' } }, 'Workspace id'),
    el('div', { attrs: { class: 'row' } }, idInput, el('button', { attrs: { type: 'submit' } }, 'Join workspace')),
    el('p', { attrs: { id: 'join-hint', class: 'hint' } }, 'Ask the workspace owner to invite your name first.'),
  );

  const list = el('ul', { attrs: { class: 'workspace-list', 'aria-label': 'Your workspaces' } });
  const listNote = el('p', { attrs: { class: 'hint' } }, 'Loading…');

  root.replaceChildren(
    el(
      'main',
      { attrs: { class: 'centered' } },
      el(
        'div',
        { attrs: { class: 'card' } },
        el('h1', {}, 'Workspaces'),
        el(
          'p',
          { attrs: { class: 'lede' } },
          'Signed in as ',
          el('strong', { attrs: { 'data-testid': 'signed-in-user' } }, session.userId),
          ' · ',
          el('button', { attrs: { type: 'button', class: 'link' }, on: { click: actions.signOut } }, 'Sign out'),
        ),
        el('section', { attrs: { 'aria-labelledby': 'create-heading' } }, el('h2', { attrs: { id: 'create-heading' } }, 'Create'), createForm),
        el('section', { attrs: { 'aria-labelledby': 'join-heading' } }, el('h2', { attrs: { id: 'join-heading' } }, 'Join'), joinForm),
        el('section', { attrs: { 'aria-labelledby': 'yours-heading' } }, el('h2', { attrs: { id: 'yours-heading' } }, 'Yours'), listNote, list),
        status,
      ),
    ),
  );
  nameInput.focus();
  showWorkspaces(knownWorkspaces(session.userId));
  void api.list().then(
    (workspaces) => {
      rememberWorkspaces(session.userId, workspaces);
      showWorkspaces(workspaces);
    },
    () => setText(listNote, 'Offline: showing the workspaces this device knows.'),
  );

  function showWorkspaces(workspaces: WorkspaceInfo[]): void {
    setText(listNote, workspaces.length === 0 ? 'None yet.' : '');
    list.replaceChildren(
      ...workspaces.map((w) =>
        el(
          'li',
          {},
          el('button', { attrs: { type: 'button', class: 'link' }, on: { click: () => actions.open(w.workspace_id) } }, w.name),
          el('span', { attrs: { class: 'hint' } }, ` ${w.role} · `, el('code', {}, w.workspace_id)),
        ),
      ),
    );
  }

  async function onCreate(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const name = nameInput.value.trim();
    if (!name) return;
    setText(status, '');
    try {
      const created = await api.create(name);
      rememberWorkspaces(session.userId, [created]);
      actions.open(created.workspace_id);
    } catch (failure) {
      setText(status, `Cannot create the workspace: ${(failure as Error).message}`);
    }
  }

  function onJoin(event: SubmitEvent): void {
    event.preventDefault();
    const id = idInput.value.trim();
    if (id) actions.open(id);
  }

  return { destroy: () => root.replaceChildren() };
}
