/**
 * The message list of a thread: a keyed list that updates each message's
 * nodes in place, so arriving messages never rebuild the list, never move the
 * reader's scroll position, and never close an open editor. A reader at the
 * bottom stays at the bottom, also when the list is resized.
 */
import { el, setAttribute, setText } from '../dom.js';
import type { MessageSyncState, MessageView } from '../chat-store.js';

export interface MessageActions {
  edit(id: string, text: string): void;
  remove(id: string): void;
  discardFailed(message: MessageView): void;
}

/** Longer texts are cut on screen (the full text stays in the row and the editor). */
const MAX_SHOWN_CHARS = 500;

const STATE_LABELS: Record<MessageSyncState, string> = { pending: 'pending', synced: 'synced', failed: 'failed' };

/** Nodes of one rendered message. */
interface MessageItem {
  li: HTMLLIElement;
  author: HTMLElement;
  time: HTMLTimeElement;
  edited: HTMLElement;
  state: HTMLElement;
  text: HTMLParagraphElement;
  editButton: HTMLButtonElement;
  deleteButton: HTMLButtonElement;
  discardButton: HTMLButtonElement;
  editor: HTMLFormElement | null;
  message: MessageView;
}

export class MessageList {
  /** The scrolling container to place in the layout. */
  readonly element: HTMLElement;
  private readonly list: HTMLOListElement;
  private readonly empty: HTMLElement;
  private readonly items = new Map<string, MessageItem>();
  /** Set after the user sent a message: the next update scrolls to it. */
  private revealNext = false;
  /** Whether the reader is at the end of the list (kept on scroll). */
  private atEnd = true;
  private readonly resizes: ResizeObserver;

  constructor(
    label: string,
    private readonly actions: MessageActions,
  ) {
    this.list = el('ol', { attrs: { class: 'messages' } });
    this.empty = el('p', { attrs: { class: 'empty' } }, 'No messages yet. Say hello below.');
    this.element = el(
      'div',
      {
        attrs: { class: 'message-scroll', role: 'log', 'aria-label': label, tabindex: 0 },
        on: { scroll: () => (this.atEnd = this.isNearEnd()) },
      },
      this.empty,
      this.list,
    );
    // A narrower pane (the overlay opened) makes long messages taller: keep a reader at the end there.
    this.resizes = new ResizeObserver(() => {
      if (this.atEnd) this.scrollToEnd();
    });
    this.resizes.observe(this.element);
    this.resizes.observe(this.list);
  }

  /** Stops observing sizes; call when the list leaves the page. */
  destroy(): void {
    this.resizes.disconnect();
  }

  /** What the list says while it has no messages. */
  setEmptyText(text: string): void {
    setText(this.empty, text);
  }

  /** Renames the log (the thread's title changed). */
  setLabel(label: string): void {
    setAttribute(this.element, 'aria-label', label);
  }

  /** Shows `messages` (in display order), touching only what changed. */
  update(messages: MessageView[]): void {
    const stickToEnd = this.atEnd || this.revealNext;
    const keep = new Set(messages.map((m) => m.id));
    for (const [id, item] of this.items) {
      if (!keep.has(id)) {
        item.li.remove();
        this.items.delete(id);
      }
    }
    messages.forEach((message, position) => {
      let item = this.items.get(message.id);
      if (!item) {
        item = this.createItem(message);
        this.items.set(message.id, item);
      }
      this.fill(item, message);
      const at = this.list.children[position];
      if (at !== item.li) this.list.insertBefore(item.li, at ?? null);
    });
    this.empty.hidden = messages.length > 0;
    if (stickToEnd) this.scrollToEnd();
    this.revealNext = false;
  }

  /** Scrolls to the end now and after the next update (the user just sent a message). */
  revealEnd(): void {
    this.revealNext = true;
    this.scrollToEnd();
  }

  private scrollToEnd(): void {
    this.element.scrollTop = this.element.scrollHeight;
    this.atEnd = true;
  }

  private isNearEnd(): boolean {
    const { scrollHeight, scrollTop, clientHeight } = this.element;
    return scrollHeight - scrollTop - clientHeight < 32;
  }

  private createItem(message: MessageView): MessageItem {
    const item: MessageItem = {
      li: el('li', { attrs: { class: 'message' } }),
      author: el('span', { attrs: { class: 'author' } }),
      time: el('time'),
      edited: el('span', { attrs: { class: 'edited' } }),
      state: el('span', { attrs: { class: 'sync-state' } }),
      text: el('p', { attrs: { class: 'message-text' } }),
      editButton: el('button', { attrs: { type: 'button', class: 'quiet' } }, 'Edit'),
      deleteButton: el('button', { attrs: { type: 'button', class: 'quiet' } }, 'Delete'),
      discardButton: el('button', { attrs: { type: 'button', class: 'quiet danger' } }, 'Discard'),
      editor: null,
      message,
    };
    item.editButton.addEventListener('click', () => this.openEditor(item));
    item.deleteButton.addEventListener('click', () => this.actions.remove(item.message.id));
    item.discardButton.addEventListener('click', () => this.actions.discardFailed(item.message));
    item.li.append(
      el('div', { attrs: { class: 'message-meta' } }, item.author, item.time, item.edited, item.state),
      item.text,
      el('div', { attrs: { class: 'message-actions' } }, item.editButton, item.deleteButton, item.discardButton),
    );
    return item;
  }

  private fill(item: MessageItem, message: MessageView): void {
    item.message = message;
    const { li } = item;
    setAttribute(li, 'data-message-id', message.id);
    setAttribute(li, 'data-sync-state', message.syncState);
    setAttribute(li, 'data-clock', message.clock);
    setAttribute(li, 'data-hlc', message.hlc);
    setText(item.author, message.author);
    const created = new Date(message.created_at * 1000);
    setAttribute(item.time, 'datetime', created.toISOString());
    setText(item.time, created.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hour12: false }));
    setText(item.edited, message.edited_at === null ? '' : '(edited)');
    setText(item.state, STATE_LABELS[message.syncState]);
    setAttribute(item.state, 'data-state', message.syncState);
    setAttribute(item.state, 'aria-label', `Sync state: ${STATE_LABELS[message.syncState]}`);
    setAttribute(item.state, 'title', message.failedWrites.map((w) => w.error).join('\n') || null);
    const hidden = message.text.length - MAX_SHOWN_CHARS;
    setText(item.text, hidden > 0 ? `${message.text.slice(0, MAX_SHOWN_CHARS)}… (${hidden.toLocaleString()} more characters)` : message.text);
    const short = message.text.length > 40 ? `${message.text.slice(0, 40)}…` : message.text;
    setAttribute(item.editButton, 'aria-label', `Edit message: ${short}`);
    setAttribute(item.deleteButton, 'aria-label', `Delete message: ${short}`);
    setAttribute(item.discardButton, 'aria-label', `Discard failed change: ${short}`);
    item.discardButton.hidden = message.syncState !== 'failed';
  }

  private openEditor(item: MessageItem): void {
    if (item.editor) {
      item.editor.querySelector('input')?.focus();
      return;
    }
    const inputId = `edit-${item.message.id}`;
    const input = el('input', { attrs: { id: inputId, name: 'text', required: true, autocomplete: 'off' } });
    input.value = item.message.text;
    const close = () => {
      editor.remove();
      item.editor = null;
      item.text.hidden = false;
      item.editButton.focus();
    };
    const editor = el(
      'form',
      {
        attrs: { class: 'message-editor' },
        on: {
          submit: (event) => {
            event.preventDefault();
            const text = input.value.trim();
            if (text && text !== item.message.text) this.actions.edit(item.message.id, text);
            close();
          },
          keydown: (event) => {
            if (event.key === 'Escape') {
              event.preventDefault();
              close();
            }
          },
        },
      },
      el('label', { attrs: { for: inputId, class: 'visually-hidden' } }, 'Edit message'),
      input,
      el('button', { attrs: { type: 'submit' } }, 'Save'),
      el('button', { attrs: { type: 'button' }, on: { click: close } }, 'Cancel'),
    );
    item.editor = editor;
    item.text.hidden = true;
    item.text.after(editor);
    input.focus();
    input.select();
  }
}
