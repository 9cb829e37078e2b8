// @ts-check
// Notifications while the tab is hidden: one per conversation (the tag), naming the sender
// and the conversation only. The message text only when the user opted in, and that choice
// is kept (localStorage) only on a personal device.

import { preview } from './dom.js';

export const TEXT_KEY = 'medchat.notify-text';

export class Notifier {
  constructor({ personal }) {
    this.personal = personal;
    this.supported = 'Notification' in window;
    if (!personal) {
      try {
        localStorage.removeItem(TEXT_KEY);
      } catch {
        // storage refused
      }
    }
  }

  get granted() {
    return this.supported && Notification.permission === 'granted';
  }

  get withText() {
    if (!this.personal) return false;
    try {
      return localStorage.getItem(TEXT_KEY) === '1';
    } catch {
      return false;
    }
  }

  /** The button (permission is asked on a click, never on load) and the opt-in box. */
  setupControls(settings) {
    const button = document.getElementById('notify-button');
    const state = document.getElementById('notify-state');
    const textLabel = document.getElementById('notify-text-label');
    const textBox = /** @type {HTMLInputElement | null} */ (document.getElementById('notify-text'));
    if (!settings || !button || !state || !textLabel || !textBox || !this.supported) return;
    const show = () => {
      const permission = Notification.permission;
      button.hidden = permission !== 'default';
      state.hidden = permission === 'default';
      state.textContent = permission === 'granted'
        ? 'Notifications are on while MedChat is in the background.'
        : 'Notifications are blocked in this browser\u2019s site settings.';
      textLabel.hidden = !(this.personal && permission === 'granted');
      textBox.checked = this.withText;
      settings.hidden = false;
    };
    button.addEventListener('click', async () => {
      try {
        await Notification.requestPermission();
      } finally {
        show();
      }
    });
    textBox.addEventListener('change', () => {
      if (!this.personal) return;
      if (textBox.checked) localStorage.setItem(TEXT_KEY, '1');
      else localStorage.removeItem(TEXT_KEY);
    });
    show();
  }

  /** Notify about a message if the tab is hidden and the user allowed it. */
  async message(m, conversationTitle) {
    if (!this.granted || document.visibilityState !== 'hidden' || m.kind !== 'text') return;
    const title = conversationTitle || m.sender_name || 'MedChat';
    const body = this.withText ? `${m.sender_name}: ${preview(m.body, 140)}` : `New message from ${m.sender_name}`;
    const url = `/chats/${Number(m.conversation_id)}#bottom`;
    const options = {
      body,
      tag: `conversation-${Number(m.conversation_id)}`,
      renotify: true,
      icon: '/static/icons/icon-192.png',
      data: { url },
    };
    try {
      const note = new Notification(title, options);
      note.onclick = () => {
        window.focus();
        note.close();
        location.assign(url);
      };
    } catch {
      // Some mobile browsers only allow notifications through the service worker.
      const registration = 'serviceWorker' in navigator ? await navigator.serviceWorker.getRegistration() : null;
      if (registration) await registration.showNotification(title, options);
    }
  }
}
