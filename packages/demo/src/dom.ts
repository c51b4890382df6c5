/** `el()`: builds DOM elements with attributes, listeners and children in one call. */

/** Attribute values: `false`, `null` and `undefined` leave the attribute out, `true` sets it empty. */
export type AttributeValue = string | number | boolean | null | undefined;

export interface ElementSpec {
  /** Attributes, by their HTML names (`class`, `aria-label`, `data-message-id`, ...). */
  attrs?: Record<string, AttributeValue>;
  /** Event listeners, by event name. */
  on?: { [K in keyof HTMLElementEventMap]?: (event: HTMLElementEventMap[K]) => void };
}

export type Child = Node | string | null | undefined | false;

/** Creates `<tag>` with `spec` and `children`. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  spec: ElementSpec = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(spec.attrs ?? {})) setAttribute(element, name, value);
  for (const [name, listener] of Object.entries(spec.on ?? {})) {
    element.addEventListener(name, listener as EventListener);
  }
  element.append(...children.filter((child): child is Node | string => child !== null && child !== undefined && child !== false));
  return element;
}

/** Sets or removes one attribute by the `AttributeValue` rules. */
export function setAttribute(element: Element, name: string, value: AttributeValue): void {
  if (value === false || value === null || value === undefined) element.removeAttribute(name);
  else element.setAttribute(name, value === true ? '' : String(value));
}

/** Sets `textContent` only when it changed, so unchanged nodes are left alone. */
export function setText(node: Node, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}
