// MedChat's service worker, served at /sw.js (scope /) by app/web/pwa.py, which fills in
// VERSION (a hash of every static file) and ASSETS (those files and /offline).
//
// What it keeps: the static files of this version and the offline page. Nothing else,
// ever: pages and JSON carry clinical text and go to the network only. A navigation that
// fails offline gets the offline page; /static/ files of this version come from the cache.

const VERSION = "__MEDCHAT_VERSION__";
const ASSETS = [/* __MEDCHAT_ASSETS__ */];
const CACHE = `medchat-static-${VERSION}`;
const OFFLINE_URL = '/offline';

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(ASSETS.map((url) => new Request(url, { cache: 'reload' })))));
  // No skipWaiting here: a new version waits until the page's "Update available" button asks.
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((name) => name.startsWith('medchat-') && name !== CACHE).map((name) => caches.delete(name)));
    await self.clients.claim();
  })());
});

self.addEventListener('message', (event) => {
  if (event.data && event.data.type === 'skip-waiting') self.skipWaiting();
});

async function fromCacheFirst(request) {
  const cached = await caches.match(request, { cacheName: CACHE });
  return cached || fetch(request);
}

async function networkOnly(request) {
  try {
    return await fetch(request);
  } catch (error) {
    const offline = await caches.match(OFFLINE_URL, { cacheName: CACHE });
    if (offline) return offline;
    return new Response('MedChat is offline.', { status: 503, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
  }
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === 'navigate') {
    event.respondWith(networkOnly(request));
    return;
  }
  if (url.pathname.startsWith('/static/') && !url.search && ASSETS.includes(url.pathname)) {
    event.respondWith(fromCacheFirst(request));
  }
  // Everything else (JSON, /ws, the manifest) is not touched: the browser fetches it as usual.
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const path = (event.notification.data && event.notification.data.url) || '/chats';
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const client of windows) {
      if (new URL(client.url).origin === self.location.origin) {
        await client.focus();
        client.postMessage({ type: 'open', url: path });
        return;
      }
    }
    await self.clients.openWindow(path);
  })());
});
