// @ts-check
// The one IndexedDB database MedChat may make: the outbox of unsent messages, and only on a
// device its user called personal at login. Logout deletes it (see session.js).

export const DB_NAME = 'medchat';
const STORE = 'outbox';

let opening = null;

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function open() {
  if (!opening) {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: 'client_msg_id' });
    opening = request(req);
  }
  return opening;
}

async function withStore(mode, use) {
  const db = await open();
  const tx = db.transaction(STORE, mode);
  const result = await request(use(tx.objectStore(STORE)));
  return result;
}

export const outboxStore = {
  all: () => withStore('readonly', (s) => s.getAll()),
  put: (entry) => withStore('readwrite', (s) => s.put(entry)),
  remove: (id) => withStore('readwrite', (s) => s.delete(id)),
};

/** Close and delete the database (logout, session end). */
export async function deleteDatabase() {
  if (!('indexedDB' in window)) return;
  if (opening) {
    try {
      (await opening).close();
    } catch {
      // never opened
    }
    opening = null;
  }
  await new Promise((resolve) => {
    const req = indexedDB.deleteDatabase(DB_NAME);
    req.onsuccess = req.onerror = req.onblocked = () => resolve(undefined);
  });
}
