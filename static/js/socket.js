// @ts-check
// One WebSocket per tab to /ws (docs/protocol.md): reconnect with jittered exponential
// back-off, resume with ?since=<position>, answer ping with pong, follow the close codes.

const CLOSE_SESSION_ENDED = 4401;
const BASE_DELAY = 500;
const MAX_DELAY = 30000;
const SETTLE_MS = 3000;

/**
 * Which stream position to resume from. Positions commit in order, but the events of
 * concurrent changes may arrive slightly out of order, so the positions seen in the last
 * seconds before a drop are not trusted: resuming a little early only repeats changes the
 * page already has (it skips known messages; receipts and renames are idempotent).
 */
export class ResumePoint {
  constructor(initial) {
    this.settled = Number(initial) || 0;
    this.recent = [];  // [id, time seen]
    this.highest = this.settled;
  }

  seen(id) {
    if (!Number.isFinite(id) || id <= this.settled) return;
    const now = Date.now();
    this.recent.push([id, now]);
    if (id > this.highest) this.highest = id;
    this.fold(now - 10000);
  }

  fold(before) {
    const keep = [];
    for (const [id, at] of this.recent) {
      if (at < before) this.settled = Math.max(this.settled, id);
      else keep.push([id, at]);
    }
    this.recent = keep;
  }

  /** The position to ask "everything after" for, given when the connection was lost. */
  resumeFrom(lostAt = Date.now()) {
    this.fold(lostAt - SETTLE_MS);
    return this.settled;
  }
}

/**
 * The page's side of the change stream: every frame, live or replayed from a ``sync`` page,
 * goes to ``handle``. A ``sync`` page's changes are the frames that would have come live
 * (messages, receipts, renames, members added and removed), oldest first: each goes through
 * ``handle`` exactly as a live one would, and every change's position moves ``resume``
 * (the page's own position once the last page is done). ``handle`` never sees the ``sync``
 * frame itself.
 * @param {ResumePoint} resume
 * @param {(frame: any) => void} handle
 * @returns {(frame: any) => void}
 */
export function followStream(resume, handle) {
  const onFrame = (frame) => {
    if (frame.type === 'sync') {
      for (const change of frame.changes || []) onFrame(change);
      if (frame.done) resume.seen(frame.position);
      return;
    }
    if (typeof frame.position === 'number') resume.seen(frame.position);
    handle(frame);
  };
  return onFrame;
}

export class Socket {
  /**
   * @param {object} o
   * @param {ResumePoint} o.resume
   * @param {(frame: object) => void} o.onFrame   every frame but ping/hello bookkeeping
   * @param {(state: string) => void} o.onState   'connecting' | 'open' | 'reconnecting' | 'offline' | 'ended'
   * @param {() => void} o.onSessionEnded          close 4401, or the session is gone
   */
  constructor({ resume, onFrame, onState, onSessionEnded }) {
    this.resume = resume;
    this.onFrame = onFrame;
    this.onState = onState;
    this.onSessionEnded = onSessionEnded;
    this.ws = null;
    this.state = 'idle';
    this.attempt = 0;
    this.failedHandshakes = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.timer = undefined;
    this.lostAt = Date.now();
    this.heartbeat = 20;
    this.lastHeard = 0;
    this.stopped = false;
    this.watchdog = setInterval(() => this.checkHeartbeat(), 5000);
    window.addEventListener('offline', () => this.goOffline());
    window.addEventListener('online', () => this.reconnectNow());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && this.state === 'reconnecting') this.reconnectNow();
    });
  }

  start() {
    if (navigator.onLine === false) this.goOffline();
    else this.connect();
  }

  /** @returns {boolean} */
  get isOpen() {
    return this.state === 'open' && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.onState(state);
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.detach();
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const after = this.resume.resumeFrom(this.lostAt);
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/ws?since=${after}&batch=1`);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.opened = false;
    if (this.state !== 'reconnecting' && this.state !== 'offline') this.setState('connecting');
    ws.onopen = () => {
      this.opened = true;
      this.lastHeard = Date.now();
    };
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = (event) => this.closed(ws, event.code);
    ws.onerror = () => {};  // onclose follows and decides
  }

  receive(data) {
    this.lastHeard = Date.now();
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    // With ?batch=1 the server may send several frames as one array, in order.
    for (const frame of Array.isArray(parsed) ? parsed : [parsed]) this.handle(frame);
  }

  handle(frame) {
    if (!frame || typeof frame.type !== 'string') return;
    switch (frame.type) {
      case 'ping':
        this.send({ type: 'pong' });
        return;
      case 'hello':
        this.heartbeat = Number(frame.heartbeat) || 20;
        this.attempt = 0;
        this.failedHandshakes = 0;
        this.setState('open');
        break;
      case 'sync_needed':
        this.send({ type: 'sync', since: this.resume.resumeFrom(Date.now()) });
        return;
      case 'resync':
        // Too far behind to catch up frame by frame: the page from the server is the truth.
        location.reload();
        return;
      default:
        break;
    }
    this.onFrame(frame);
  }

  send(frame) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  closed(ws, code) {
    if (ws !== this.ws) return;  // an old socket we already left
    this.ws = null;
    this.lostAt = Date.now();
    if (this.stopped) return;
    if (code === CLOSE_SESSION_ENDED) {
      this.stopped = true;
      this.setState('ended');
      this.onSessionEnded();
      return;
    }
    if (!this.opened) this.failedHandshakes += 1;
    if (navigator.onLine === false) {
      this.setState('offline');
      return;
    }
    // 4408 (slow consumer), 4000 (heartbeat), 1011, 1006: reconnect and resume from the last id.
    this.setState('reconnecting');
    if (this.failedHandshakes >= 2) this.checkSession();
    this.scheduleReconnect();
  }

  /** A refused handshake (401) looks like any failed connection: ask a page whether we are still logged in. */
  async checkSession() {
    try {
      const response = await fetch('/chats?auto=1', { method: 'HEAD', redirect: 'manual', credentials: 'same-origin', cache: 'no-store' });
      if (response.type === 'opaqueredirect' || response.status === 401) {
        this.stop();
        this.setState('ended');
        this.onSessionEnded();
      }
    } catch {
      // offline: the next attempt will tell
    }
  }

  scheduleReconnect() {
    clearTimeout(this.timer);
    const ceiling = Math.min(MAX_DELAY, BASE_DELAY * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);  // jitter: clients do not return in step
    this.attempt = Math.min(this.attempt + 1, 16);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  reconnectNow() {
    if (this.stopped || this.isOpen) return;
    this.attempt = 0;
    this.setState('reconnecting');
    this.connect();
  }

  goOffline() {
    if (this.stopped) return;
    // The network is gone: the socket may look open for a minute more, but nothing gets through.
    clearTimeout(this.timer);
    if (this.ws) this.lostAt = Date.now();
    this.detach();
    this.setState('offline');
  }

  checkHeartbeat() {
    if (!this.isOpen) return;
    if (Date.now() - this.lastHeard > 3 * this.heartbeat * 1000) {
      this.lostAt = this.lastHeard;
      this.detach();
      this.setState('reconnecting');
      this.scheduleReconnect();
    }
  }

  detach() {
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onmessage = ws.onclose = ws.onerror = null;
    if (ws.readyState === WebSocket.CONNECTING) {
      // close() now would log "closed before the connection is established": close once open.
      ws.onopen = () => ws.close(1000);
      return;
    }
    ws.onopen = null;
    try {
      ws.close(1000);
    } catch {
      // already closing
    }
  }

  /** Close for good (logout, the session ended). */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.watchdog);
    this.detach();
  }
}
