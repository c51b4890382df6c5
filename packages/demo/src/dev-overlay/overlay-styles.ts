/** The overlay's stylesheet, injected once per document so any app can mount the panel without a CSS import. */

const STYLE_ID = 'or3-dev-overlay-styles';

const CSS = `
.or3-overlay {
  --or3-ov-bg: #101418; --or3-ov-fg: #e6e9ec; --or3-ov-dim: #9aa4ad; --or3-ov-line: #2a323a;
  --or3-ov-ok: #5fd38d; --or3-ov-warn: #f2c14e; --or3-ov-bad: #ff7b72; --or3-ov-accent: #79b8ff;
  box-sizing: border-box; background: var(--or3-ov-bg); color: var(--or3-ov-fg);
  font: 12px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; padding: 10px 12px;
  overflow: auto; min-width: 0;
}
.or3-overlay[hidden] { display: none; }
.or3-overlay *, .or3-overlay *::before, .or3-overlay *::after { box-sizing: inherit; }
.or3-overlay--floating {
  position: fixed; right: 12px; bottom: 12px; width: min(420px, calc(100vw - 24px)); max-height: min(80vh, 720px);
  border-radius: 8px; box-shadow: 0 8px 30px rgb(0 0 0 / 35%); z-index: 2147483000;
}
.or3-overlay header { display: flex; align-items: center; justify-content: space-between; margin-bottom: 6px; }
.or3-overlay h2 { font-size: 13px; margin: 0; letter-spacing: .02em; }
.or3-overlay h3 { font-size: 12px; margin: 12px 0 4px; color: var(--or3-ov-dim); font-weight: 600; text-transform: uppercase; letter-spacing: .05em; }
.or3-overlay button {
  font: inherit; color: var(--or3-ov-fg); background: #1c232b; border: 1px solid var(--or3-ov-line);
  border-radius: 5px; padding: 3px 9px; cursor: pointer;
}
.or3-overlay button:hover:not(:disabled) { border-color: var(--or3-ov-accent); }
.or3-overlay button:focus-visible { outline: 2px solid var(--or3-ov-accent); outline-offset: 1px; }
.or3-overlay button:disabled { opacity: .5; cursor: not-allowed; }
.or3-overlay .or3-overlay-close { padding: 0 7px; font-size: 15px; line-height: 20px; }
.or3-overlay-facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 10px; margin: 0; }
.or3-overlay-facts dt { color: var(--or3-ov-dim); }
.or3-overlay-facts dd { margin: 0; overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
.or3-overlay [data-field="connection"]::before { content: "●"; margin-right: 5px; color: var(--or3-ov-dim); }
.or3-overlay [data-field="connection"][data-state="online"]::before { color: var(--or3-ov-ok); }
.or3-overlay [data-field="connection"][data-state="offline"]::before { color: var(--or3-ov-warn); }
.or3-overlay [data-field="connection"][data-state="error"]::before { color: var(--or3-ov-bad); }
.or3-overlay-actions { display: flex; align-items: center; gap: 8px; margin-top: 8px; }
.or3-overlay-note { color: var(--or3-ov-dim); margin: 0; }
.or3-overlay-mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 11px; }
.or3-overlay-conflicts { list-style: none; margin: 0; padding: 0; display: grid; gap: 6px; }
.or3-overlay-conflicts li { border-left: 3px solid var(--or3-ov-warn); padding: 2px 0 2px 7px; overflow-wrap: anywhere; }
.or3-overlay-stamp { display: flex; gap: 6px; color: var(--or3-ov-dim); }
.or3-overlay-stamp[data-won="true"] { color: var(--or3-ov-fg); }
.or3-overlay-side { flex: 0 0 48px; }
.or3-overlay-runs { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
.or3-overlay-runs th, .or3-overlay-runs td { text-align: left; padding: 2px 4px; border-bottom: 1px solid var(--or3-ov-line); white-space: nowrap; }
.or3-overlay-runs th { color: var(--or3-ov-dim); font-weight: 500; }
.or3-overlay-runs tr[data-error] td { color: var(--or3-ov-bad); }
`;

/** Adds the stylesheet to `document.head` unless it is there already. */
export function injectOverlayStyles(): void {
  if (document.getElementById(STYLE_ID)) return;
  const style = document.createElement('style');
  style.id = STYLE_ID;
  style.textContent = CSS;
  document.head.append(style);
}
