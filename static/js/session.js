// @ts-check
// Leaving a shared terminal: before the logout form goes, wipe what the script made (Cache
// Storage, the outbox database, its localStorage and sessionStorage keys), close the
// socket and tell the other tabs (BroadcastChannel) to go to the login page. The server's
// Clear-Site-Data does the same again; pages are no-store, and one restored from the
// back/forward cache reloads (and so asks for a login). Closing a tab's socket and wiping
// again when told is cheap, so every path that ends a session ends up here.

import { deleteDatabase } from './store.js';

const CHANNEL = 'medchat';
const PREFIX = 'medchat.';

function removeOwnKeys(storage) {
  try {
    for (const key of Object.keys(storage)) if (key.startsWith(PREFIX)) storage.removeItem(key);
  } catch {
    // storage refused
  }
}

/** Delete everything this script may have stored in the browser. */
export async function wipe() {
  /** @type {Promise<unknown>[]} */
  const jobs = [deleteDatabase()];
  if ('caches' in window) jobs.push(caches.keys().then((keys) => Promise.all(keys.map((k) => caches.delete(k)))));
  if ('serviceWorker' in navigator) {
    jobs.push(navigator.serviceWorker.getRegistrations().then((all) => Promise.all(all.map((r) => r.unregister()))));
  }
  removeOwnKeys(localStorage);
  removeOwnKeys(sessionStorage);
  await Promise.allSettled(jobs);
}

function within(ms, promise) {
  return Promise.race([promise, new Promise((resolve) => setTimeout(resolve, ms))]);
}

function channel() {
  return 'BroadcastChannel' in window ? new BroadcastChannel(CHANNEL) : null;
}

/**
 * @param {object} o
 * @param {() => void} o.closeSocket
 */
export function setupSession({ closeSocket }) {
  const bc = channel();
  let leaving = false;

  const leave = () => {
    if (leaving) return;
    leaving = true;
    closeSocket();
    location.replace('/login');
  };

  if (bc) {
    bc.onmessage = (event) => {
      if (event.data && event.data.type === 'logout' && document.body.dataset.userId) leave();
    };
  }

  for (const form of /** @type {NodeListOf<HTMLFormElement>} */ (document.querySelectorAll('form.logout'))) {
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (leaving) return;
      leaving = true;
      for (const button of form.querySelectorAll('button')) button.disabled = true;
      closeSocket();
      await within(2000, wipe());
      // The real logout: ends the server session and answers with Clear-Site-Data. The other
      // tabs are told from the page it leads to (loggedOut below), once the session is gone:
      // told now, they could reach /login while still logged in and be sent back to the chats.
      form.submit();
    });
  }

  window.addEventListener('pageshow', (event) => {
    // Restored from the back/forward cache after a logout: ask the server again.
    if (event.persisted) location.reload();
  });

  return {
    /** The session ended elsewhere (the socket closed with 4401): wipe and log in again. */
    async ended() {
      if (leaving) return;
      leaving = true;
      closeSocket();
      await within(2000, wipe());
      if (bc) bc.postMessage({ type: 'logout' });
      location.replace(`/login?next=${encodeURIComponent(location.pathname)}`);
    },
    /** On the login page after a logout: make sure nothing is left, and the other tabs leave. */
    async loggedOut() {
      await within(2000, wipe());
      if (bc) bc.postMessage({ type: 'logout' });
    },
  };
}
