// @ts-check
// Ask once before what cannot be undone with one click. A link with ``data-confirm`` opens
// a confirmation page without JavaScript; with it, the same words appear in a dialog and,
// confirmed, the script posts to the link's URL (the page's own URL answers GET with the
// question and POST with the deed), with the page's CSRF token.

export function setupConfirmations(root = document) {
  root.addEventListener('click', (event) => {
    const link = event.target instanceof Element ? /** @type {HTMLAnchorElement | null} */ (event.target.closest('a[data-confirm]')) : null;
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    const token = /** @type {HTMLInputElement | null} */ (document.querySelector('input[name="csrf_token"]'));
    if (!token) return;  // no token to send: let the confirmation page ask
    event.preventDefault();
    if (!window.confirm(link.dataset.confirm || '')) return;
    const form = document.createElement('form');
    form.method = 'post';
    form.action = link.href;
    const field = document.createElement('input');
    field.type = 'hidden';
    field.name = 'csrf_token';
    field.value = token.value;
    form.append(field);
    document.body.append(form);
    form.submit();
  });
}
