// An app as a user writes it, on the packed packages only: the workspace in
// ?ws=, the user in ?user= (dev tokens from the gateway), notes synced live.
import { createApp, defineComponent, h, ref } from 'vue';
import { GatewayProvider, openWorkspace } from '@or3/sync-client';
import { createSyncPlugin, useActiveWorkspace, useLiveQuery, useSyncStatus } from '@or3/sync-vue';

const params = new URLSearchParams(location.search);
const provider = new GatewayProvider({
  baseUrl: location.origin,
  getToken: async () => {
    const response = await fetch('/v1/dev/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: params.get('user') }),
    });
    return (await response.json()).token;
  },
});

const Notes = defineComponent({
  setup() {
    const workspace = useActiveWorkspace();
    const status = useSyncStatus();
    const notes = useLiveQuery((engine) => engine.db.table('posts').toArray(), [], { initial: [] });
    const text = ref('');
    const add = async (event) => {
      event.preventDefault();
      await workspace.engine.value.db.table('posts').put({ id: crypto.randomUUID(), text: text.value });
      text.value = '';
    };
    return () =>
      h('main', [
        h('p', { 'data-testid': 'state' }, status.state),
        h('form', { onSubmit: add }, [
          h('label', ['Note ', h('input', { value: text.value, onInput: (e) => (text.value = e.target.value) })]),
          h('button', { type: 'submit' }, 'Add'),
        ]),
        h('ul', notes.value.map((note) => h('li', { key: note.id, class: 'note' }, note.text))),
      ]);
  },
});

createApp(Notes)
  .use(
    createSyncPlugin({
      initialWorkspaceId: params.get('ws'),
      open: (workspaceId) => openWorkspace({ workspaceId, provider, schema: { posts: 'id' } }),
    }),
  )
  .mount('#app');
