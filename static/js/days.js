// @ts-check
// Day separators ("Today", "Monday 3 November 2026") in a message list: the one rule, which
// templates/chats/_messages.html follows on the server. Pure: no DOM.

/**
 * Where the separators go. ``days`` has one entry per row of the list: a message's day
 * label, or null for a row that is not a message (the "New messages" divider), which stays
 * with the message after it. The answer has one entry per row: the label of the separator
 * that goes before that row, or null.
 * @param {(string | null)[]} days
 * @returns {(string | null)[]}
 */
export function dayBreaks(days) {
  /** @type {(string | null)[]} */
  const out = days.map(() => null);
  let previous = null;
  let runStart = -1;  // the first of the non-message rows just above
  days.forEach((day, index) => {
    if (day === null) {
      if (runStart < 0) runStart = index;
      return;
    }
    if (day !== previous) out[runStart < 0 ? index : runStart] = day;
    previous = day;
    runStart = -1;
  });
  return out;
}
