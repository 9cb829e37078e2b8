// @ts-check
// Installable app: the service worker (registered only while logged in), the "update
// available" banner, the install button, and notification clicks routed by the worker.

export function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  let reloading = false;
  let asked = false;
  const banner = document.getElementById('update-banner');
  const button = /** @type {HTMLButtonElement | null} */ (document.getElementById('update-button'));

  const offer = (worker) => {
    if (!banner || !button || !navigator.serviceWorker.controller) return;
    banner.hidden = false;
    button.onclick = () => {
      asked = true;
      button.disabled = true;
      worker.postMessage({ type: 'skip-waiting' });
    };
  };

  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (asked && !reloading) {
      reloading = true;
      location.reload();
    }
  });
  navigator.serviceWorker.addEventListener('message', (event) => {
    // A click on a notification shown by the worker: open that conversation here.
    const data = event.data || {};
    if (data.type === 'open' && typeof data.url === 'string' && /^\/chats\/\d+(#bottom)?$/.test(data.url)) location.assign(data.url);
  });

  navigator.serviceWorker.register('/sw.js', { scope: '/', updateViaCache: 'none' }).then((registration) => {
    if (registration.waiting) offer(registration.waiting);
    registration.addEventListener('updatefound', () => {
      const worker = registration.installing;
      if (!worker) return;
      worker.addEventListener('statechange', () => {
        if (worker.state === 'installed') offer(worker);
      });
    });
  }).catch(() => {
    // no service worker (private mode, or the browser refused): the site works without it
  });
}

export function setupInstallButton() {
  const button = document.getElementById('install-button');
  const settings = document.getElementById('app-settings');
  let deferred = null;
  window.addEventListener('beforeinstallprompt', (event) => {
    event.preventDefault();  // show our own button instead of the browser's mini bar
    deferred = event;
    if (button && settings) {
      button.hidden = false;
      settings.hidden = false;
    }
  });
  window.addEventListener('appinstalled', () => {
    deferred = null;
    if (button) button.hidden = true;
  });
  if (button) {
    button.addEventListener('click', async () => {
      if (!deferred) return;
      const prompt = deferred;
      deferred = null;
      button.hidden = true;
      await prompt.prompt();
    });
  }
}
