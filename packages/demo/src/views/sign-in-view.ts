/** The first screen: pick a user name (dev auth signs a token for any name). */
import { el, setText } from '../dom.js';
import { USER_ID_PATTERN, signIn, type DevSession } from '../dev-session.js';
import type { View } from './view.js';

export function renderSignInView(root: HTMLElement, onSignedIn: (session: DevSession) => void): View {
  const input = el('input', {
    attrs: {
      id: 'sign-in-name',
      name: 'user',
      autocomplete: 'username',
      required: true,
      pattern: USER_ID_PATTERN,
      title: 'Letters, digits, _ and -, up to 64',
      'aria-describedby': 'sign-in-hint',
    },
  });
  const error = el('p', { attrs: { class: 'form-error', role: 'alert' } });
  const submit = el('button', { attrs: { type: 'submit' } }, 'Continue');
  const form = el(
    'form',
    { attrs: { class: 'card' }, on: { submit: (event) => void onSubmit(event) } },
    el('h1', {}, 'or3 chat'),
    el('p', { attrs: { class: 'lede' } }, 'A local-first chat on or3-sync. Every window keeps its own copy and stays in step.'),
    el('label', { attrs: { for: 'sign-in-name' } }, 'Your name'),
    el('div', { attrs: { class: 'row' } }, input, submit),
    el('p', { attrs: { id: 'sign-in-hint', class: 'hint' } }, 'Dev auth: any name signs in. Letters, digits, _ and -.'),
    error,
  );
  root.replaceChildren(el('main', { attrs: { class: 'centered' } }, form));
  input.focus();

  async function onSubmit(event: SubmitEvent): Promise<void> {
    event.preventDefault();
    const name = input.value.trim();
    if (!name) return;
    submit.disabled = true;
    setText(error, '');
    try {
      onSignedIn(await signIn(name));
    } catch (failure) {
      setText(error, `Cannot sign in: ${(failure as Error).message}`);
      submit.disabled = false;
    }
  }

  return { destroy: () => root.replaceChildren() };
}
