// @ts-check
// The ticks under a message of mine, from the other members' watermarks: the one rule, which
// templates/chats/_message.html (the page without JavaScript) draws the same way. Pure: no DOM.

export const TICK = '\u2713';

/**
 * A member as the page describes them (section[data-members]) and receipts update them.
 * ``from`` is where their history starts (history_from_id): a member added after a message
 * never receives it, so it counts neither for its delivered nor for its read ticks.
 * @typedef {{id: number, name: string, read: number, delivered: number, from?: number}} Member
 */

/**
 * What the ticks say.
 * @typedef {{cls: string, text: string, label: string, title?: string, info?: boolean}} TickState
 */

/**
 * The members a message ``id`` was for: those whose history includes it.
 * @param {number} id
 * @param {Member[]} others
 * @returns {Member[]}
 */
export function recipients(id, others) {
  return others.filter((o) => (o.from || 0) < id);
}

/**
 * What the ticks of my message ``id`` say (0: not stored yet); null when nobody else
 * was there to receive it.
 * @param {number} id
 * @param {Member[]} [others]
 * @param {string} [kind] 'direct' or 'group'
 * @returns {TickState | null}
 */
export function tickState(id, others = [], kind = 'direct') {
  if (!id) return { cls: 'pending', text: '\u{1F551} Sending', label: 'Sending' };
  const meant = recipients(id, others);
  if (!meant.length) return null;
  const read = meant.filter((o) => o.read >= id);
  const delivered = meant.filter((o) => o.delivered >= id || o.read >= id);
  if (kind === 'group') {
    const names = read.map((o) => o.name).filter(Boolean).join(', ') || 'nobody yet';
    const title = `Read by ${names}: message info`;
    if (read.length === meant.length) {
      return { cls: 'read', text: `${TICK}${TICK} Read by all`, label: 'Read by all', title, info: true };
    }
    const all = delivered.length === meant.length;
    const words = `Read by ${read.length} of ${meant.length}`;
    return { cls: '', text: `${TICK}${all ? TICK : ''} ${words}`, label: `${all ? 'Delivered to all, ' : 'Sent, '}${words.toLowerCase()}`, title, info: true };
  }
  if (read.length) return { cls: 'read', text: `${TICK}${TICK} Read`, label: 'Read' };
  if (delivered.length) return { cls: '', text: `${TICK}${TICK} Delivered`, label: 'Delivered' };
  return { cls: '', text: `${TICK} Sent`, label: 'Sent' };
}
