import { expect, test } from 'vitest';
import { api } from '../convex/_generated/api.js';
import { as, newBackend, put, workspaceWith } from './setup.js';

test('push then pull', async () => {
  const t = newBackend();
  const ws = await workspaceWith(t, 'alice');
  const res = await as(t, 'alice').mutation(api.sync.push, { workspace_id: ws, ops: [put('threads', 't1', { title: 'x' })] });
  expect(res.results[0]?.status).toBe('applied');
  const page = await as(t, 'alice').query(api.sync.pull, { workspace_id: ws, cursor: 0 });
  expect(page.changes).toHaveLength(1);
});
