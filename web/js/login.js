// The sign-in page (/login?code=…): redeems the single-use login code for a session, keeps the
// session's page secret, and goes to the inbox; or says why not and how to get a fresh link.
import { keepPageSecret, signInHelp } from './session.js';
import { h } from './dom.js';

const main = document.getElementById('main');
const code = new URLSearchParams(location.search).get('code');
// The code is spent by the request below; keep it out of the address bar and the history anyway.
history.replaceState(null, '', '/login');

function fail(reason) {
  document.title = 'Sign in · onionpost';
  main.replaceChildren(signInHelp(reason));
  main.querySelector('h1').focus();
}

async function signIn() {
  if (!code) return fail('none');
  main.replaceChildren(h('p', { class: 'loading', testid: 'signing-in' }, 'Signing in…'));
  let res;
  try {
    res = await fetch('/session', {
      method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code }),
    });
  } catch {
    return fail('OFFLINE');
  }
  const out = await res.json().catch(() => null);
  if (res.ok && typeof out?.pageSecret === 'string') {
    keepPageSecret(out.pageSecret);
    location.replace('/#/inbox');
    return;
  }
  fail(out?.error?.data?.code ?? 'LOGIN_CODE_UNKNOWN');
}

void signIn();
