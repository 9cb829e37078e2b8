// @ts-check
// MedChat's script: progressive enhancement of pages that work without it. It takes over
// what it understands (the send form, the chat list, the logout form) and leaves the rest.
// ES modules, no build step, no framework; the CSP allows no inline script or style.

import { ChatList } from './chatlist.js';
import { setupConfirmations } from './confirm.js';
import { Conversation } from './conversation.js';
import { setupCopyButtons } from './copy.js';
import { localiseTimes } from './dom.js';
import { Notifier } from './notify.js';
import { Outbox } from './outbox.js';
import { registerServiceWorker, setupInstallButton } from './pwa.js';
import { setupSession } from './session.js';
import { followStream, ResumePoint, Socket } from './socket.js';

/** How long delivered receipts of messages not on screen are collected before they go. */
const DELIVERED_BATCH_MS = 1000;

const body = document.body;
const me = Number(body.dataset.userId) || 0;
localiseTimes(document);  // the server wrote its own zone's times; show the reader's
const personal = body.dataset.personalDevice === '1';

let socket = null;
const session = setupSession({ closeSocket: () => socket && socket.stop() });

if (!me) {
  // Logged out (or never in): keep nothing. After a logout, make sure of it and tell the other tabs.
  if (new URLSearchParams(location.search).has('bye')) session.loggedOut();
} else {
  registerServiceWorker();
  setupConfirmations();
  setupCopyButtons();
  setupInstallButton();
  const root = document.querySelector('[data-position]');
  if (root && 'WebSocket' in window) startLive(root);
}

function startLive(root) {
  const banner = document.getElementById('conn-banner');
  const notifier = new Notifier({ personal });
  notifier.setupControls(document.getElementById('app-settings'));

  const section = /** @type {HTMLElement | null} */ (document.querySelector('section.conversation[data-conversation-id]'));
  const currentId = section ? Number(section.dataset.conversationId) : null;
  const listElement = document.getElementById('chat-list');
  const chatList = listElement ? new ChatList(listElement, { me, currentId }) : null;
  const resume = new ResumePoint(root.dataset.position);

  let conversation = null;
  const outbox = new Outbox({
    persist: personal && 'indexedDB' in window,
    transmit: (frame) => socket.send(frame),
    onFailed: (entry, error) => conversation && entry.conversation_id === conversation.id && conversation.failed(entry, error),
  });

  // Delivered receipts for messages that are not on screen, batched per conversation for a
  // second: a grey double tick a second later costs the sender nothing, and in a busy ward
  // every member's receipt is a write and a fan-out (docs/performance.md, issue 10).
  const delivered = new Map();
  let deliveredTimer = null;
  const flushDelivered = () => {
    deliveredTimer = null;
    for (const [conversationId, upTo] of delivered) {
      if (socket.send({ type: 'delivered', conversation_id: conversationId, up_to_id: upTo })) delivered.delete(conversationId);
    }
  };
  const noteDelivered = (m) => {
    delivered.set(m.conversation_id, Math.max(delivered.get(m.conversation_id) || 0, m.id));
    if (!deliveredTimer) deliveredTimer = setTimeout(flushDelivered, DELIVERED_BATCH_MS);
  };

  const handleMessage = (m) => {
    const fromOther = m.sender_id !== me;
    if (!fromOther && m.client_msg_id) outbox.done(m.client_msg_id);  // stored: an event is as good as the ack
    const shownHere = conversation ? conversation.onMessage(m) && !conversation.historical : false;
    const onScreen = shownHere && document.visibilityState === 'visible';
    if (chatList) chatList.onMessage(m, { countsAsUnread: fromOther && m.kind === 'text' && !onScreen });
    if (!fromOther) return;
    if (!shownHere) noteDelivered(m);
    if (document.visibilityState === 'hidden') {
      notifier.message(m, chatList ? chatList.titleOf(m.conversation_id) : (shownHere ? conversation.title : ''));
    }
  };

  // Every change of the stream carries its position: the point to resume from. What happened
  // while this tab was away comes in sync pages, each change handled here as if it came live.
  const onFrame = followStream(resume, (frame) => {
    switch (frame.type) {
      case 'hello':
        if (chatList) {
          // The page itself brought these: tell their senders they were delivered.
          for (const [conversationId, lastId] of chatList.unreadConversations()) {
            if (conversationId !== currentId && lastId) noteDelivered({ conversation_id: conversationId, id: lastId });
          }
        }
        outbox.pump();
        if (conversation) conversation.markSeen();
        flushDelivered();
        break;
      case 'message':
        handleMessage(frame.message);
        break;
      case 'ack':
        outbox.done(frame.client_msg_id);
        handleMessage(frame.message);
        break;
      case 'receipt':
        if (conversation) conversation.onReceipt(frame);
        if (chatList) chatList.onReceipt(frame);
        break;
      case 'typing':
        if (conversation) conversation.onTyping(frame);
        break;
      case 'presence_snapshot':
      case 'presence_batch':
        if (conversation) conversation.onPresence(frame.users || []);
        break;
      case 'presence':
        if (conversation) conversation.onPresence([frame]);
        break;
      case 'conversation':
        if (conversation) conversation.onConversation(frame);
        if (chatList) chatList.onConversation(frame);
        break;
      case 'error':
        outbox.refused(frame);
        break;
      default:
        break;
    }
  });

  let bannerTimer = null;
  const onState = (state) => {
    clearTimeout(bannerTimer);
    if (state !== 'open') outbox.connectionLost();
    const say = (text) => {
      if (!banner) return;
      banner.textContent = text;
      banner.classList.toggle('offline', state === 'offline');
    };
    if (state === 'open' || state === 'ended') say('');
    else if (state === 'offline') say(outboxNote('You are offline.'));
    else if (state === 'reconnecting') bannerTimer = setTimeout(() => say(outboxNote('Connection lost. Reconnecting\u2026')), 1000);
  };
  const outboxNote = (text) => (outbox.size ? `${text} ${outbox.size} message${outbox.size === 1 ? '' : 's'} will be sent when the connection is back.` : text);

  socket = new Socket({ resume, onFrame, onState, onSessionEnded: () => session.ended() });

  if (section) {
    conversation = new Conversation(section, {
      me,
      myName: body.dataset.userName || 'You',
      socket,
      outbox: {
        add: (entry) => {
          outbox.add(entry);
          if (!socket.isOpen) onState(socket.state);  // update the banner's count
        },
      },
      onRead: (conversationId) => chatList && chatList.markRead(conversationId),
    });
    conversation.start();
  }
  outbox.load().then((entries) => {
    if (conversation) conversation.showQueued(entries.filter((e) => e.conversation_id === conversation.id));
    outbox.pump();
  });
  if (chatList) chatList.updateTotals();
  socket.start();

  // The connection state and the outbox size, for the browser tests (nothing clinical).
  Object.defineProperty(window, 'medchat', { value: Object.freeze({
    get state() { return socket.state; },
    get queued() { return outbox.size; },
  }) });
}
