// A conversation (#/chat/<onion>): the chat messages with one person, oldest at the top, yours on
// the right with their delivery state, and a reply box under them. Enter sends, Shift+Enter starts
// a new line. New messages and state changes arrive live; their messages on screen are marked read.
// Yours show "Read" once the other side's read receipt arrives (they allow sending them); the
// checkbox under the box is your own choice, for every contact: off until you turn it on.
import { ApiError } from '../api.js';
import { debounce, deliveryText, h, shortOnion, timeEl } from '../dom.js';

const TICKS = { queued: 'Waiting', sending: 'Sending…', delivered: 'Delivered', failed: 'Not sent', held: 'Held', expired: 'Expired' };

function bubble(m) {
  const out = m.direction === 'out';
  const state = out ? (m.readAt ? 'read' : m.state) : 'received';
  return h('li', { class: `bubble ${out ? 'out' : 'in'}`, testid: 'chat-message', 'data-id': m.id, 'data-state': state },
    h('div', { class: 'bubble-body', testid: 'chat-body' }, m.body ?? ''),
    h('div', { class: 'bubble-meta' },
      timeEl(m.receivedAt ?? m.createdAt),
      out ? h('span', { class: `tick tick-${state}`, testid: 'chat-state' }, state === 'read' ? 'Read' : (TICKS[m.state] ?? m.state)) : null),
    out && (m.state === 'failed' || m.state === 'held' || m.state === 'expired' || (m.state === 'queued' && m.delivery))
      ? h('div', { class: 'bubble-why' }, deliveryText(m)) : null);
}

export async function mount(ctx, route) {
  const peerOnion = route.arg ?? '';
  let convo = await ctx.rpc('messages.conversation', { peer: peerOnion, limit: 200, markRead: true });
  const list = h('ol', { class: 'chat-log', testid: 'chat-log', 'aria-label': 'Messages', 'aria-live': 'polite' });
  const input = h('textarea', { rows: 2, maxlength: 262000, placeholder: 'Message', 'aria-label': 'Message', testid: 'chat-input' });
  const send = h('button', { type: 'submit', class: 'primary', testid: 'chat-send' }, 'Send');
  const error = h('p', { class: 'error', role: 'alert', hidden: true, testid: 'chat-error' });
  const form = h('form', { class: 'chat-compose', testid: 'chat-form' }, input, send);
  const receipts = h('input', { type: 'checkbox', testid: 'read-receipts' });
  const settings = await ctx.rpc('settings.get', {});
  receipts.checked = settings.readReceipts;
  receipts.addEventListener('change', () => {
    void ctx.rpc('settings.set', { readReceipts: receipts.checked })
      .then((s) => (receipts.checked = s.readReceipts))
      .catch((err) => {
        receipts.checked = !receipts.checked;
        error.hidden = false;
        error.textContent = err instanceof ApiError ? err.message : String(err?.message ?? err);
      });
  });
  const receiptsRow = h('label', { class: 'chat-receipts muted' }, receipts, ' Send read receipts (your contacts see when you read their chat messages)');
  const title = h('h1', { tabindex: -1, testid: 'chat-title', title: convo.peer }, convo.name || shortOnion(convo.peer));
  const el = h('section', { class: 'view chat' },
    h('div', { class: 'view-head' },
      h('a', { class: 'back', href: '#/chats' }, '← Chats'),
      title,
      convo.contact ? h('a', { class: 'button small', href: `#/contact/${encodeURIComponent(convo.contact)}` }, 'Contact') : null),
    !convo.name ? h('p', { class: 'muted stranger' }, 'Not in your contacts. Identity key starts ', h('code', {}, convo.fingerprint ?? ''), '.') : null,
    list, error, form, receiptsRow);

  function render() {
    list.replaceChildren(...convo.messages.map(bubble));
    list.lastElementChild?.scrollIntoView({ block: 'end' });
  }

  let sending = 0;
  async function submit() {
    const body = input.value;
    if (!body.trim()) return;
    sending++;
    send.disabled = true;
    error.hidden = true;
    try {
      const last = convo.messages.at(-1);
      await ctx.rpc('messages.send', { to: convo.name || convo.peer, body, kind: 'chat', ...(last ? { threadId: last.threadId } : {}) });
      input.value = '';
      await reload();
    } catch (err) {
      error.hidden = false;
      error.textContent = err instanceof ApiError ? err.message : String(err?.message ?? err);
    } finally {
      sending--;
      send.disabled = false;
      input.focus();
    }
  }
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void submit();
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void submit();
    }
  });

  // An answer overtaken by a newer request's is dropped: it would put older states back on screen.
  let asked = 0;
  async function reload() {
    const n = ++asked;
    const answer = await ctx.rpc('messages.conversation', { peer: peerOnion, limit: 200, markRead: !document.hidden });
    if (n !== asked) return;
    convo = answer;
    render();
    ctx.refreshGlobals();
  }
  const again = debounce(() => void reload().catch(() => {}), 50);
  render();
  ctx.refreshGlobals();
  const onVisible = () => {
    if (!document.hidden) again();
  };
  document.addEventListener('visibilitychange', onVisible);
  return {
    el,
    title: `Chat with ${convo.name || shortOnion(convo.peer)}`,
    refresh: again,
    onEvent(ev) {
      if (ev.type === 'message.received' && ev.from === convo.peer) again();
      // A message just sent may be delivered before the reload that lists it answers: while a
      // send is in flight, a state change of a message not on screen yet is looked at too.
      if (ev.type === 'message.state' && (sending > 0 || convo.messages.some((m) => m.id === ev.id))) again();
      if ((ev.type === 'message.read' || ev.type === 'message.peerRead') && convo.messages.some((m) => m.id === ev.id)) again();
    },
    destroy() {
      document.removeEventListener('visibilitychange', onVisible);
    },
  };
}
