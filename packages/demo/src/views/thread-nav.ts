/** The thread list beside the messages, with a field to start a thread. */
import { el } from '../dom.js';
import type { ThreadRow } from '../chat-store.js';

export interface ThreadNavActions {
  select(threadId: string): void;
  create(title: string): void;
}

export class ThreadNav {
  readonly element: HTMLElement;
  private readonly list: HTMLUListElement;
  private readonly empty: HTMLElement;
  private threads: ThreadRow[] = [];
  private selected: string | null = null;

  constructor(private readonly actions: ThreadNavActions) {
    this.list = el('ul', { attrs: { class: 'thread-list' } });
    this.empty = el('p', { attrs: { class: 'hint' } }, 'No threads yet.');
    const input = el('input', { attrs: { id: 'new-thread-title', name: 'title', required: true, maxlength: 120, autocomplete: 'off' } });
    const form = el(
      'form',
      {
        attrs: { class: 'new-thread' },
        on: {
          submit: (event) => {
            event.preventDefault();
            const title = input.value.trim();
            if (!title) return;
            input.value = '';
            this.actions.create(title);
          },
        },
      },
      el('label', { attrs: { for: 'new-thread-title' } }, 'New thread'),
      el('div', { attrs: { class: 'row' } }, input, el('button', { attrs: { type: 'submit' } }, 'Add')),
    );
    this.element = el(
      'nav',
      { attrs: { class: 'threads', 'aria-labelledby': 'threads-heading' } },
      el('h2', { attrs: { id: 'threads-heading' } }, 'Threads'),
      this.empty,
      this.list,
      form,
    );
  }

  update(threads: ThreadRow[], selected: string | null): void {
    this.threads = threads;
    this.selected = selected;
    this.empty.hidden = threads.length > 0;
    this.list.replaceChildren(
      ...threads.map((thread) => {
        const current = thread.id === this.selected;
        return el(
          'li',
          {},
          el(
            'button',
            {
              attrs: { type: 'button', class: 'thread', 'aria-current': current ? 'page' : false, 'data-thread-id': thread.id },
              on: { click: () => this.actions.select(thread.id) },
            },
            el('span', { attrs: { class: 'thread-mark', 'aria-hidden': 'true' } }, '#'),
            thread.title,
          ),
        );
      }),
    );
  }

  select(threadId: string | null): void {
    this.update(this.threads, threadId);
  }

  /** The title of a thread, if listed. */
  titleOf(threadId: string): string | null {
    return this.threads.find((t) => t.id === threadId)?.title ?? null;
  }
}
