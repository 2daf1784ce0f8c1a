// Compose: to (contact alias, registered name or .onion), subject, body, mail/chat. After sending
// it shows the message's state and follows it live (queued → sending → delivered, …).
import { ApiError } from '../api.js';
import { h, setStateBadge, shortOnion, stateBadge } from '../dom.js';

let fieldSeq = 0;

/** A labelled field with an optional hint tied to it by aria-describedby. */
function field(label, control, hint) {
  const id = `f${++fieldSeq}`;
  control.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

export async function mount(ctx, route) {
  const q = route.query;
  const contacts = await ctx.rpc('contacts.list').catch(() => []);
  const reply = q.get('thread') && q.get('inReplyTo') ? { threadId: q.get('thread'), inReplyTo: q.get('inReplyTo') } : null;
  const kind = q.get('kind') === 'chat' ? 'chat' : 'mail';

  const to = h('input', { name: 'to', type: 'text', required: true, autocomplete: 'off', spellcheck: 'false', list: 'contact-options', value: q.get('to') ?? '', testid: 'compose-to' });
  const subject = h('input', { name: 'subject', type: 'text', maxlength: 998, value: q.get('subject') ?? '', testid: 'compose-subject' });
  const body = h('textarea', { name: 'body', rows: 7, maxlength: 262000, testid: 'compose-body' });
  const kindRadio = (value, label) => h('label', { class: 'choice' },
    h('input', { type: 'radio', name: 'kind', value, checked: kind === value, testid: `compose-kind-${value}` }), label);
  const send = h('button', { type: 'submit', class: 'primary', testid: 'compose-send' }, 'Send');
  const result = h('div', { class: 'result', testid: 'send-result', 'aria-live': 'polite', hidden: true });
  const datalist = h('datalist', { id: 'contact-options' }, contacts.map((c) => h('option', { value: c.alias }, shortOnion(c.onion))));

  let sentId = null;
  // State events can outrun the messages.send reply (delivery over a fast link finishes first):
  // remember recent ones so the reply's state can be brought up to date at once.
  const recentStates = new Map();

  const form = h('form', { class: 'card form', novalidate: true, 'aria-labelledby': 'compose-h' },
    field('To', to, 'A contact, a registered name, or an .onion address.'),
    datalist,
    h('fieldset', { class: 'kind' }, h('legend', {}, 'Kind'), kindRadio('mail', 'Mail'), kindRadio('chat', 'Chat')),
    field('Subject', subject),
    field('Message', body),
    h('div', { class: 'actions' }, send, h('a', { class: 'button', href: '#/inbox' }, 'Cancel')));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const recipient = to.value.trim();
    if (!recipient) {
      showError('Enter who the message is for.');
      to.focus();
      return;
    }
    const params = { to: recipient, subject: subject.value, body: body.value, kind: form.elements.kind.value };
    if (reply) Object.assign(params, reply);
    send.disabled = true;
    send.textContent = 'Sending…';
    try {
      const r = await ctx.rpc('messages.send', params);
      sentId = r.id;
      showSent(r, recipient);
      if (recentStates.has(r.id)) applyState(recentStates.get(r.id));
      recentStates.clear();
      body.value = '';
      if (!reply) subject.value = '';
      ctx.announce(`Message to ${recipient} ${r.state}.`);
    } catch (err) {
      showError(err instanceof ApiError ? `${err.message}` : String(err?.message ?? err), err?.code);
    } finally {
      send.disabled = false;
      send.textContent = 'Send';
    }
  });

  function showSent(r, recipient) {
    result.hidden = false;
    result.className = 'result ok';
    result.removeAttribute('role');
    result.replaceChildren(
      h('p', {}, 'Message to ', h('strong', { title: r.to }, recipient), ': ', stateBadge(r.state, 'send-state'),
        h('span', { class: 'reason', testid: 'send-reason' }, r.reason ? ` ${r.reason}` : '')),
      h('p', { class: 'muted' }, 'Follow it in the ', h('a', { href: '#/outbox' }, 'Outbox'), '.'));
  }

  function showError(text, code) {
    result.hidden = false;
    result.className = 'result error';
    result.setAttribute('role', 'alert');
    result.replaceChildren(h('p', { testid: 'send-error' }, text, code ? h('span', { class: 'code' }, ` (${code})`) : null));
  }

  const el = h('section', { class: 'view narrow' },
    h('div', { class: 'view-head' }, h('h1', { id: 'compose-h', tabindex: -1 }, reply ? 'Reply' : 'Compose')),
    form, result);

  return {
    el,
    title: 'Compose',
    onEvent(ev) {
      if (ev.type !== 'message.state') return;
      if (ev.id === sentId) applyState(ev);
      else if (send.disabled) recentStates.set(ev.id, ev);
    },
  };

  function applyState(ev) {
    const badge = result.querySelector('[data-testid="send-state"]');
    if (badge) setStateBadge(badge, ev.state);
    const reason = result.querySelector('[data-testid="send-reason"]');
    if (reason) reason.textContent = ev.reason && ev.state !== 'delivered' ? ` ${ev.reason}` : '';
  }
}
