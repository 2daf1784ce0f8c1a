/**
 * `onionpost deploy` and `onionpost providers …` as a user types them: real CLI processes against
 * a real dev chain process. A provider lists itself with a stake, a user finds it and pays in TRX
 * and in a TRC-20 token, the price guard and the stake's lock refuse with one-line typed errors.
 * A node started with `--network dev` reads the same directory through its API (providers.list).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bin, cliEnv, oneLineError, runCli, startChainProcess } from '../fixtures/cli.js';
import { connectToNode } from '../../src/api/index.js';
import { cryptoReady, generateIdentity } from '../../src/crypto/index.js';
import { silentLogger } from '../../src/log.js';
import { openStore } from '../../src/store/index.js';

const root = mkdtempSync(join(tmpdir(), 'onionpost-cli-providers-'));
const env = cliEnv(root);
let chain: ChildProcess | undefined;
let chainUrl = '';
const prov = join(root, 'provider');
const prov2 = join(root, 'provider2');
const user = join(root, 'user');
const run = (args: string[]) => runCli(env, args);

function json<T>(args: string[]): T {
  const r = run([...args, '--json']);
  assert.equal(r.code, 0, `${args.join(' ')} failed: ${r.err}`);
  return JSON.parse(r.out) as T;
}

before(async () => {
  const c = await startChainProcess(env, ['--accounts', '6']);
  chain = c.process;
  chainUrl = c.url;
  for (const dir of [prov, prov2, user]) assert.equal(run(['init', '--data-dir', dir, '--kdf', 'fast']).code, 0);
});

after(() => {
  if (chain?.pid) chain.kill('SIGTERM');
  rmSync(root, { recursive: true, force: true });
});

interface Listing { onion: string; owner: string; status: string; terms: { pricePer30Days: string; token: string | null; retentionDays: number }; stakeSun: string }

test('deploy records the directory and a dev token; providers register, list, show, pay, leave', () => {
  oneLineError(run(['providers', 'list', '--network', 'dev']), 'NO_DEPLOYMENT');
  const d = json<{ directory: string; token: string }>(['deploy', '--network', 'dev', '--full-host', chainUrl, '--dev-account', '0']);
  assert.match(d.directory, /^T/);
  assert.match(d.token, /^T/);

  const reg = json<{ onion: string; owner: string }>(['providers', 'register', '--data-dir', prov, '--dev-account', '1', '--stake', '100', '--price', '5', '--retention-days', '30']);
  const list = json<{ providers: Listing[] }>(['providers', 'list']);
  assert.equal(list.providers.length, 1);
  const p = list.providers[0]!;
  assert.equal(p.onion, reg.onion);
  assert.deepEqual([p.status, p.terms.pricePer30Days, p.terms.token, p.terms.retentionDays, p.stakeSun], ['listed', '5000000', null, 30, '100000000']);
  // Too small a stake is the contract's refusal, typed.
  oneLineError(run(['providers', 'register', '--data-dir', prov2, '--dev-account', '3', '--stake', '99']), 'TX_FAILED');

  const shown = json<Listing & { paidUntil: number | null }>(['providers', 'show', reg.onion, '--data-dir', user, '--mine']);
  assert.equal(shown.owner, reg.owner);
  assert.equal(shown.paidUntil, 0);
  oneLineError(run(['providers', 'pay', reg.onion, '--data-dir', user, '--dev-account', '2', '--max-price', '4.5']), 'PRICE_CHANGED');
  const paid = json<{ amount: string; paidUntil: number; token: string | null }>(['providers', 'pay', reg.owner, '--data-dir', user, '--dev-account', '2', '--periods', '2', '--max-price', '5']);
  assert.equal(paid.amount, '10000000');
  assert.equal(paid.token, null);
  assert.equal(json<{ paidUntil: number }>(['providers', 'show', reg.onion, '--data-dir', user, '--mine']).paidUntil, paid.paidUntil);

  // A token-priced provider; the user's account needs tokens first (the deployer holds them all).
  const reg2 = json<{ onion: string }>(['providers', 'register', '--data-dir', prov2, '--dev-account', '3', '--stake', '100', '--price', '2', '--token', d.token]);
  oneLineError(run(['providers', 'pay', reg2.onion, '--data-dir', user, '--dev-account', '2']), 'TX_FAILED');
  assert.equal(run(['providers', 'pay', reg2.onion, '--data-dir', user, '--dev-account', '0', '--json']).code, 0, 'the token holder pays');

  assert.equal(run(['providers', 'leave', '--dev-account', '1']).code, 0);
  assert.equal(json<{ providers: Listing[] }>(['providers', 'list']).providers.length, 1);
  assert.equal(json<{ providers: Listing[] }>(['providers', 'list', '--all']).providers.length, 2);
  oneLineError(run(['providers', 'withdraw', '--dev-account', '1']), 'TX_FAILED');
  oneLineError(run(['providers', 'show', 'nobody']), 'USAGE');
});

test('register and update put the mailbox providers the node subscribed at in its registry record', async () => {
  await cryptoReady();
  // The node is not running: the commands read its providers from its store, as `mailboxes add` left them.
  const dir = join(root, 'registrant');
  assert.equal(run(['init', '--data-dir', dir, '--kdf', 'fast']).code, 0);
  const subscribe = (onion: string, identityKey: Uint8Array, at: number) => {
    const store = openStore({ path: join(dir, 'node.db'), logger: silentLogger() });
    try {
      store.mailboxProviders.put({ onion, identityKey: Buffer.from(identityKey).toString('hex'), terms: { retentionMs: 1, quotaBytes: 1, time: 1, sig: new Uint8Array(64) }, subscribedAt: at });
    } finally {
      store.close();
    }
  };
  const [p1, p2] = [generateIdentity(), generateIdentity()];
  subscribe(p1.onion, p1.identityKey, 1);
  const reg = json<{ mailboxes: string[]; version: number }>(['register', 'mbuser', '--data-dir', dir, '--dev-account', '4']);
  assert.deepEqual(reg.mailboxes, [p1.onion]);
  assert.deepEqual(json<{ mailboxes: string[] }>(['lookup', 'mbuser']).mailboxes, [p1.onion]);

  subscribe(p2.onion, p2.identityKey, 2);
  const up = json<{ mailboxes: string[]; version: number }>(['update', '--data-dir', dir, '--dev-account', '4']);
  assert.equal(up.version, 2);
  const look = json<{ mailboxes: string[]; version: number }>(['lookup', 'mbuser']);
  assert.deepEqual([look.mailboxes, look.version], [[p1.onion, p2.onion], 2]);
  oneLineError(run(['update', '--data-dir', dir, '--dev-account', '5']), 'NOT_FOUND');
});

test('onionpost start --network dev: the running node\'s API lists the directory the CLI lists', async () => {
  const child = spawn(process.execPath, [bin, 'start', '--data-dir', user, '--loopback', join(root, 'lb'), '--network', 'dev', '--smtp-port', '0', '--imap-port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  try {
    for (let i = 0; i < 600 && !/onionpost node running/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /onionpost node running/, out);
    const cli = json<{ providers: Listing[] }>(['providers', 'list']);
    const node = await connectToNode(user).call<{ providers: (Listing & { ours: boolean })[] }>('providers.list');
    assert.deepEqual(node.providers.map((p) => [p.onion, p.owner, p.terms.pricePer30Days, p.stakeSun, p.ours]), cli.providers.map((p) => [p.onion, p.owner, p.terms.pricePer30Days, p.stakeSun, false]));
    assert.equal(node.providers.length, 1);

    // The directory policy (`mailboxes policy`), and `providers list` judging listings by it through the node.
    type Judged = { providers: (Listing & { eligible?: boolean; reason?: string | null })[] };
    const pol = json<{ directory: boolean; minStakeSun: string; freeOnly: boolean }>(['mailboxes', 'policy', '--data-dir', user, '--directory', 'on', '--min-stake', '200']);
    assert.deepEqual([pol.directory, pol.minStakeSun, pol.freeOnly], [true, '200000000', false]);
    const shown = run(['mailboxes', 'policy', '--data-dir', user]);
    assert.equal(shown.code, 0, shown.err);
    assert.match(shown.out, /Directory policy: on .*keeps 2\n.*at least 200 TRX, keep mail at least 7 days, any price/s);
    let judged = json<Judged>(['providers', 'list', '--data-dir', user]).providers[0]!;
    assert.deepEqual([judged.eligible, judged.reason], [false, 'stake below your minimum']);
    assert.match(run(['providers', 'list', '--data-dir', user]).out, /not eligible: stake below your minimum/);
    // The token-priced listing was paid for this user's identity above: eligible once the stake filter allows it.
    json(['mailboxes', 'policy', '--data-dir', user, '--min-stake', '0']);
    judged = json<Judged>(['providers', 'list', '--data-dir', user]).providers[0]!;
    assert.deepEqual([judged.eligible, judged.reason], [true, null]);
    json(['mailboxes', 'policy', '--data-dir', user, '--free-only']);
    assert.equal(json<Judged>(['providers', 'list', '--data-dir', user]).providers[0]!.reason, 'not free');
    oneLineError(run(['mailboxes', 'policy', '--data-dir', user, '--max-price', '5:nope']), 'BAD_POLICY');
    // Without a running node there is nothing to judge by: the listing alone.
    assert.equal(json<Judged>(['providers', 'list']).providers[0]!.eligible, undefined);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});
