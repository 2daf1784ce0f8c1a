// Compose (#/compose, #/compose?draft=<id>, #/compose?to=…&subject=…&thread=…&inReplyTo=…&kind=…):
// to (contact alias, registered name or .onion), subject, body, files, mail/chat.
//
// - Keys: Enter in To or Subject moves to the next field (it never sends); Ctrl+Enter or Cmd+Enter
//   in the message sends.
// - Files: up to the node's limit (16), and the total the envelope's largest size bucket leaves
//   for subject, body and files together; the meter says how much is used before sending.
// - Drafts: what is typed is saved on the node as a draft (after a short pause) and survives
//   restarts; sending removes it. Drafts are listed at #/drafts.
// - After sending, the result panel follows the message's state live (queued → sending →
//   delivered, …): green only once delivered; held and failed are shown as the problems they are.
import { ApiError } from '../api.js';
import { bytesLabel, debounce, deliveryText, fileToBase64, h, setStateBadge, shortOnion, stateBadge, timeEl, utf8Length } from '../dom.js';

let fieldSeq = 0;

/** A labelled field with an optional hint tied to it by aria-describedby. */
function field(label, control, hint) {
  const id = `f${++fieldSeq}`;
  control.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

function newId() {
  return [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Result-panel style for a state: only delivered is a success. */
function resultClass(state) {
  if (state === 'delivered') return 'result ok';
  if (state === 'held') return 'result warn';
  if (state === 'failed' || state === 'expired') return 'result error';
  return 'result pending';
}

const MAX_NAME_CHARS = 120;

export async function mount(ctx, route) {
  const q = route.query;
  const [contacts, limits] = await Promise.all([ctx.rpc('contacts.list').catch(() => []), ctx.rpc('messages.limits')]);
  let draftId = q.get('draft') ?? null;
  const draft = draftId ? await ctx.rpc('drafts.get', { id: draftId }) : null;
  const reply = draft?.threadId ? { threadId: draft.threadId, ...(draft.inReplyTo ? { inReplyTo: draft.inReplyTo } : {}) }
    : q.get('thread') && q.get('inReplyTo') ? { threadId: q.get('thread'), inReplyTo: q.get('inReplyTo') } : null;
  const kind = (draft?.kind ?? q.get('kind')) === 'chat' ? 'chat' : 'mail';
  /** Files picked so far: { name, mediaType, data (base64), size }. */
  let files = (draft?.attachments ?? []).map((a) => ({ name: a.name, mediaType: a.mediaType, data: a.data, size: a.size }));

  const to = h('input', { name: 'to', type: 'text', required: true, autocomplete: 'off', spellcheck: 'false', list: 'contact-options', value: draft?.to ?? q.get('to') ?? '', testid: 'compose-to' });
  const subject = h('input', { name: 'subject', type: 'text', maxlength: 998, value: draft?.subject ?? q.get('subject') ?? '', testid: 'compose-subject', enterkeyhint: 'next' });
  const body = h('textarea', { name: 'body', rows: 7, maxlength: 262000, testid: 'compose-body' });
  body.value = draft?.body ?? '';
  const kindRadio = (value, label) => h('label', { class: 'choice' },
    h('input', { type: 'radio', name: 'kind', value, checked: kind === value, testid: `compose-kind-${value}` }), label);
  const send = h('button', { type: 'submit', class: 'primary', testid: 'compose-send' }, 'Send');
  const result = h('div', { class: 'result', testid: 'send-result', 'aria-live': 'polite', hidden: true });
  const datalist = h('datalist', { id: 'contact-options' }, contacts.map((c) => h('option', { value: c.alias }, shortOnion(c.onion))));
  const draftStatus = h('span', { class: 'muted draft-status', testid: 'draft-status', 'aria-live': 'polite' }, draft ? 'Draft restored.' : '');

  const picker = h('input', { type: 'file', multiple: true, class: 'visually-hidden', testid: 'compose-files', 'aria-label': 'Attach files' });
  const attach = h('button', { type: 'button', testid: 'compose-attach' }, 'Attach files…');
  attach.addEventListener('click', () => picker.click());
  const fileList = h('ul', { class: 'files', testid: 'compose-file-list' });
  const meter = h('p', { class: 'hint', testid: 'compose-limit', id: 'compose-limit' });
  const tooBig = h('p', { class: 'error', role: 'alert', testid: 'compose-too-big', hidden: true });

  let sentId = null;
  // State events can outrun the messages.send reply (delivery over a fast link finishes first):
  // remember recent ones so the reply's state can be brought up to date at once.
  const recentStates = new Map();

  const used = () => utf8Length(subject.value) + utf8Length(body.value)
    + files.reduce((n, f) => n + 6 + utf8Length(f.name) + utf8Length(f.mediaType) + f.size, 0);

  function updateMeter() {
    const n = used();
    meter.textContent = `Up to ${limits.maxAttachments} files; ${bytesLabel(limits.capacity)} in all, text included. Used: ${bytesLabel(n)}${files.length ? ` in ${files.length} file${files.length === 1 ? '' : 's'} and text` : ''}.`;
    const over = n > limits.capacity || files.length > limits.maxAttachments;
    tooBig.hidden = !over;
    tooBig.textContent = files.length > limits.maxAttachments
      ? `That is ${files.length} files; a message carries at most ${limits.maxAttachments}. Remove some, or send them in two messages.`
      : `This message is ${bytesLabel(n - limits.capacity)} over the limit. Remove a file, or send the files in several messages.`;
    send.disabled = over;
    attach.disabled = files.length >= limits.maxAttachments;
  }

  function renderFiles() {
    fileList.replaceChildren(...files.map((f, i) => {
      const remove = h('button', { type: 'button', class: 'small', testid: 'compose-file-remove', 'aria-label': `Remove ${f.name}` }, 'Remove');
      remove.addEventListener('click', () => {
        files.splice(i, 1);
        renderFiles();
        scheduleSave();
      });
      return h('li', { class: 'file', testid: 'compose-file' }, h('span', { class: 'file-name' }, f.name), h('span', { class: 'muted' }, ` ${bytesLabel(f.size)}`), ' ', remove);
    }));
    updateMeter();
  }

  picker.addEventListener('change', async () => {
    for (const f of picker.files ?? []) {
      const name = f.name.length > MAX_NAME_CHARS ? `${f.name.slice(0, MAX_NAME_CHARS - 10)}…${f.name.slice(-9)}` : f.name;
      // Files far beyond the limit are refused before being read into memory.
      if (f.size > limits.capacity) {
        tooBig.hidden = false;
        tooBig.textContent = `${f.name} is ${bytesLabel(f.size)}; a whole message holds at most ${bytesLabel(limits.capacity)}.`;
        continue;
      }
      files.push({ name, mediaType: (f.type || 'application/octet-stream').slice(0, 100), data: await fileToBase64(f), size: f.size });
    }
    picker.value = '';
    renderFiles();
    if (!tooBig.hidden && used() <= limits.capacity && files.length <= limits.maxAttachments) tooBig.hidden = true;
    scheduleSave();
  });

  const form = h('form', { class: 'card form', novalidate: true, 'aria-labelledby': 'compose-h' },
    field('To', to, 'A contact, a registered name, or an .onion address.'),
    datalist,
    h('fieldset', { class: 'kind' }, h('legend', {}, 'Kind'), kindRadio('mail', 'Mail'), kindRadio('chat', 'Chat')),
    field('Subject', subject),
    field('Message', body, 'Ctrl+Enter (⌘+Enter on a Mac) sends.'),
    h('div', { class: 'field attach-field' }, picker, attach, fileList, meter, tooBig),
    h('div', { class: 'actions' }, send, h('a', { class: 'button', href: '#/inbox' }, 'Close'), h('a', { class: 'button', href: '#/drafts', testid: 'to-drafts' }, 'Drafts'), draftStatus));

  // Enter in a one-line field would submit the form: it moves on instead.
  to.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.isComposing) {
      e.preventDefault();
      subject.focus();
    }
  });
  subject.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.isComposing) {
      e.preventDefault();
      body.focus();
    }
  });
  body.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  // ── drafts ──
  let saving = Promise.resolve();
  let dirty = false;
  async function saveDraft() {
    if (!dirty) return;
    dirty = false;
    const empty = !to.value.trim() && !subject.value.trim() && !body.value.trim() && files.length === 0;
    if (empty && !draftId) return;
    draftId ??= newId();
    try {
      await ctx.rpc('drafts.save', {
        id: draftId, kind: form.elements.kind.value, to: to.value, subject: subject.value, body: body.value,
        ...(reply ? reply : {}), attachments: files.map((f) => ({ name: f.name, mediaType: f.mediaType, data: f.data })),
      });
      draftStatus.replaceChildren('Draft saved ', timeEl(Date.now()), '.');
    } catch (err) {
      draftStatus.textContent = `Draft not saved: ${err.message}`;
    }
  }
  const saveSoon = debounce(() => {
    saving = saving.then(saveDraft);
  }, 500);
  function scheduleSave() {
    dirty = true;
    updateMeter();
    saveSoon();
  }
  for (const c of [to, subject, body]) c.addEventListener('input', scheduleSave);
  form.addEventListener('change', (e) => {
    if (e.target?.name === 'kind') scheduleSave();
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const recipient = to.value.trim();
    if (!recipient) {
      showError('Enter who the message is for.');
      to.focus();
      return;
    }
    if (send.disabled) return;
    const params = {
      to: recipient, subject: subject.value, body: body.value, kind: form.elements.kind.value,
      ...(files.length ? { attachments: files.map((f) => ({ name: f.name, mediaType: f.mediaType, data: f.data })) } : {}),
    };
    if (reply) Object.assign(params, reply);
    // A pending save must not recreate the draft after the send removed it.
    dirty = false;
    await saving;
    if (draftId) params.draftId = draftId;
    send.disabled = true;
    send.textContent = 'Sending…';
    try {
      const r = await ctx.rpc('messages.send', params);
      sentId = r.id;
      showSent(r, recipient);
      if (recentStates.has(r.id)) applyState(recentStates.get(r.id));
      recentStates.clear();
      body.value = '';
      files = [];
      renderFiles();
      draftId = null;
      draftStatus.textContent = '';
      if (!reply) subject.value = '';
      ctx.announce(`Message to ${recipient} ${r.state === 'held' ? 'held: review the key change first' : r.state}.`);
    } catch (err) {
      showError(err instanceof ApiError ? `${err.message}` : String(err?.message ?? err), err?.code);
    } finally {
      send.textContent = 'Send';
      updateMeter();
    }
  });

  function showSent(r, recipient) {
    result.hidden = false;
    result.className = resultClass(r.state);
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
  renderFiles();

  return {
    el,
    title: 'Compose',
    onEvent(ev) {
      if (ev.type !== 'message.state') return;
      if (ev.id === sentId) applyState(ev);
      else if (send.textContent !== 'Send') recentStates.set(ev.id, ev);
    },
    destroy() {
      // Leaving the view saves what was typed since the last save.
      if (dirty) saving = saving.then(saveDraft);
    },
  };

  function applyState(ev) {
    const badge = result.querySelector('[data-testid="send-state"]');
    if (badge) setStateBadge(badge, ev.state);
    result.className = resultClass(ev.state);
    const reason = result.querySelector('[data-testid="send-reason"]');
    if (reason) reason.textContent = ev.state !== 'delivered' && (ev.delivery || ev.reason) ? ` ${deliveryText(ev)}` : '';
  }
}
