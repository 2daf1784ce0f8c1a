// Status: this node's onion address (copyable), Tor bootstrap and reachability, queue counts,
// warnings, and settings: desktop notifications (in this browser). Tor changes arrive live as tor.status events; counts follow
// message events.
import { copyText, debounce, fingerprint, h } from '../dom.js';

/** Notifications are a browser permission plus our own on/off (kept in this browser). */
function notificationSetting(ctx) {
  const n = ctx.notifications;
  const box = h('input', { type: 'checkbox', id: 'set-notify', testid: 'setting-notifications', checked: n.enabled, disabled: !n.supported });
  const note = h('span', { class: 'hint' }, !n.supported ? ' This browser cannot show notifications.'
    : Notification.permission === 'denied' ? ' Blocked in this browser’s site settings.' : ' Shows who wrote and the subject, never the text, while this tab is in the background.');
  box.addEventListener('change', async () => {
    if (box.checked) box.checked = await n.enable();
    else n.disable();
  });
  return h('div', { class: 'setting' }, box, h('label', { for: 'set-notify' }, 'Desktop notifications for new messages'), note);
}


/**
 * Rotate keys: what it does, in plain words, and the command (it runs with the node stopped, so
 * this page cannot do it; the node tells us the command as it was started here).
 */
function rotateSection() {
  const cmd = h('code', { class: 'command', testid: 'rotate-command' });
  const copy = h('button', { type: 'button' }, 'Copy command');
  const copied = h('span', { class: 'muted', 'aria-live': 'polite' });
  copy.addEventListener('click', async () => {
    copied.textContent = (await copyText(cmd.textContent, cmd)) ? 'Copied.' : 'Selected: press Ctrl+C to copy.';
    setTimeout(() => (copied.textContent = ''), 2500);
  });
  const follow = h('p', { testid: 'rotate-follow' });
  const el = h('div', { class: 'rotate', testid: 'rotate-keys' },
    h('h3', {}, 'Rotate keys'),
    h('p', {}, 'Rotating gives you a new identity key, and so a new address: the old one stops working once you restart. ',
      'Do it if you think your key file or passphrase was copied.'),
    follow,
    h('p', {}, 'Stop the node first (Ctrl-C where it runs), then run this in a terminal, and start the node again:'),
    h('div', { class: 'with-button' }, cmd, copy), copied);
  return {
    el,
    show(r) {
      cmd.textContent = r.command ?? 'onionpost keys rotate';
      follow.textContent = r.registryName
        ? `Your registry record ("${r.registryName}") is updated with a statement signed by your old key, so contacts who found you by that name move to the new address by themselves, without a warning. People who have only your onion address must be given the new one. It does not hide who you were: the record says, for anyone to read, that the new key replaces the old one.`
        : 'You have no registry record on this node, so contacts cannot follow by themselves: give them your new address afterwards.';
    },
  };
}

const COUNT_LABELS = [
  ['queued', 'Queued'], ['sending', 'Sending'], ['delivered', 'Delivered'], ['held', 'Held'],
  ['failed', 'Failed'], ['expired', 'Expired'], ['inbox', 'Received'], ['unread', 'Unread'],
];

export async function mount(ctx) {
  const onion = h('code', { class: 'onion big', testid: 'onion-address' });
  const copy = h('button', { type: 'button', testid: 'copy-onion' }, 'Copy address');
  const copied = h('span', { class: 'muted', 'aria-live': 'polite' });
  copy.addEventListener('click', async () => {
    copied.textContent = (await copyText(onion.textContent, onion)) ? 'Copied.' : 'Selected: press Ctrl+C to copy.';
    setTimeout(() => (copied.textContent = ''), 2500);
  });

  const reachable = h('span', { class: 'pill', testid: 'reachable' });
  const progress = h('progress', { max: 100, value: 0, 'aria-labelledby': 'boot-label', testid: 'bootstrap' });
  const bootPct = h('span', { class: 'pct', testid: 'bootstrap-pct' });
  const torState = h('span', { testid: 'tor-state' });
  const torMode = h('span', {});
  const torVersion = h('span', { class: 'muted' });
  const peers = h('span', {});
  const counts = h('dl', { class: 'counts', testid: 'queue-counts' });
  const warnings = h('ul', { class: 'warnings', testid: 'warnings' });
  const encKey = h('code', { class: 'fp', testid: 'own-encryption-key' });
  const rotate = rotateSection();

  const el = h('section', { class: 'view' },
    h('div', { class: 'view-head' }, h('h1', { tabindex: -1 }, 'Status')),
    h('div', { class: 'card address' },
      h('h2', {}, 'Your address'),
      h('p', { class: 'muted' }, 'Give this to people who should be able to write to you.'),
      h('div', { class: 'with-button' }, onion, copy), copied),
    h('div', { class: 'grid' },
      h('div', { class: 'card' },
        h('h2', {}, 'Tor'),
        h('dl', { class: 'kv' },
          h('dt', {}, 'Mode'), h('dd', {}, torMode, ' ', torVersion),
          h('dt', { id: 'boot-label' }, 'Bootstrap'), h('dd', { class: 'boot' }, progress, bootPct),
          h('dt', {}, 'State'), h('dd', {}, torState),
          h('dt', {}, 'Reachable'), h('dd', {}, reachable),
          h('dt', {}, 'Peers'), h('dd', {}, peers))),
      h('div', { class: 'card' }, h('h2', {}, 'Messages'), counts)),
    h('div', { class: 'card' }, h('h2', {}, 'Warnings'), warnings),
    h('div', { class: 'card settings' },
      h('h2', {}, 'Settings'),
      notificationSetting(ctx),
      h('h3', {}, 'Your keys'),
      h('dl', { class: 'kv' }, h('dt', {}, 'Encryption key'), h('dd', {}, encKey)),
      rotate.el));

  function showTor(tor, isReachable) {
    torMode.textContent = tor.mode === 'tor' ? 'Tor' : `${tor.mode} (no Tor: local testing)`;
    torVersion.textContent = tor.version ? `v${tor.version}` : '';
    progress.value = tor.bootstrap ?? 0;
    bootPct.textContent = `${tor.bootstrap ?? 0}%`;
    torState.textContent = tor.state ?? '';
    reachable.textContent = isReachable ? 'Yes' : 'No';
    reachable.className = `pill ${isReachable ? 'good' : 'bad'}`;
    reachable.dataset.value = isReachable ? 'yes' : 'no';
  }

  async function refresh() {
    const st = await ctx.rpc('node.status');
    onion.textContent = st.onion;
    encKey.textContent = fingerprint(st.encryptionKey);
    showTor(st.tor ?? {}, st.reachable);
    peers.textContent = `${st.peers?.connected ?? 0} connected`;
    counts.replaceChildren(...COUNT_LABELS.map(([k, label]) =>
      h('div', { class: `count count-${k}` }, h('dt', {}, label), h('dd', { 'data-count': k }, String(st.counts?.[k] ?? 0)))));
    rotate.show(st.rotateKeys ?? { command: null, registryName: null });
    const ws = st.warnings ?? [];
    warnings.replaceChildren(...(ws.length
      ? ws.map((w) => h('li', { class: 'warn' }, w.message, w.type === 'contact.keyChange' ? [' ', h('a', { href: '#/contacts' }, 'Review')] : null))
      : [h('li', { class: 'none' }, 'None.')]));
  }
  const again = debounce(() => void refresh().catch(() => {}), 100);

  await refresh();
  return {
    el,
    title: 'Status',
    refresh: again,
    onEvent(ev) {
      if (ev.type === 'tor.status') showTor(ev, ev.reachable);
      again();
    },
  };
}
