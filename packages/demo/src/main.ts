/**
 * The demo's entry: shows the sign-in screen, the workspace picker or the
 * chat of the workspace in the URL, and switches between them.
 */
import './styles.css';
import { DevSession, USER_KEY, currentUser, signOut } from './dev-session.js';
import { currentRoute, navigate } from './routes.js';
import { renderChatView, type ChatView } from './views/chat-view.js';
import { renderSignInView } from './views/sign-in-view.js';
import type { View } from './views/view.js';
import { renderWorkspacePickerView } from './views/workspace-picker-view.js';

const root = document.getElementById('app');
if (!root) throw new Error('index.html lacks #app');

let view: View | null = null;
let chat: ChatView | null = null;
/** Screen changes run one after another: closing a workspace is async. */
let switching: Promise<void> = Promise.resolve();

function show(): void {
  switching = switching.then(showRoute).catch((error: unknown) => console.error('or3 chat: cannot show the screen', error));
}

async function showRoute(): Promise<void> {
  const user = currentUser();
  const route = currentRoute();
  if (user && route.workspaceId && chat?.workspaceId === route.workspaceId) {
    chat.selectThread(route.threadId);
    return;
  }
  await view?.destroy();
  view = chat = null;
  if (!user) {
    view = renderSignInView(root!, () => show());
  } else if (!route.workspaceId) {
    view = renderWorkspacePickerView(root!, new DevSession(user), {
      open: (workspaceId) => navigate({ workspaceId, threadId: null }),
      signOut: () => {
        signOut();
        show();
      },
    });
  } else {
    view = chat = renderChatView(root!, new DevSession(user), route.workspaceId, route.threadId, {
      switchWorkspace: () => navigate({ workspaceId: null, threadId: null }),
    });
  }
}

window.addEventListener('hashchange', show);
// Another tab signed in or out: follow it.
window.addEventListener('storage', (event) => {
  if (event.key === USER_KEY || event.key === null) show();
});
show();
