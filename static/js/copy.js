// @ts-check
// A Copy button beside a read-only field marked ``data-copy="NAME"`` (the one-time invite
// link). Only the script can copy, so only the script adds the button; without it the field
// is there to select. The clipboard API needs a secure context and may be refused: then the
// text is selected instead, for the person to copy by hand.

import { h } from './dom.js';

export function setupCopyButtons(root = document) {
  for (const field of /** @type {NodeListOf<HTMLInputElement>} */ (root.querySelectorAll('input[data-copy][readonly]'))) {
    const name = field.dataset.copy || 'text';
    const status = h('span', { class: 'copy-status', id: `copy-${name}-status`, role: 'status' });
    const button = h('button', { type: 'button', id: `copy-${name}`, 'aria-describedby': status.id }, `Copy ${name}`);
    button.addEventListener('click', async () => {
      try {
        if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard here');
        await navigator.clipboard.writeText(field.value);
        status.textContent = 'Copied.';
      } catch {
        field.focus();
        field.select();
        status.textContent = 'Selected: copy it with Ctrl+C, or press and hold.';
      }
    });
    field.after(h('span', { class: 'copy-actions' }, button, ' ', status));
  }
}
