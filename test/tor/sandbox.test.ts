/**
 * The README's main command, as CI would run it: `onionpost sandbox --once` (what `npm start -- --once`
 * runs) brings up its own private Tor network, dev chain and three nodes, lists carol's mailbox
 * provider in the directory, has bob pay for and take a subscription there, delivers every demo
 * message by registered name, then stops bob: alice's message to him is held at carol ("in_mailbox"),
 * bob's node starts again, fetches it (carol deletes it) and alice sees it delivered. It exits 0 and
 * leaves no tor behind.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { processesMentioning } from '../fixtures/tor.js';

const bin = join(dirname(fileURLToPath(import.meta.url)), '../../../bin/onionpost.js');
const dir = mkdtempSync(join(tmpdir(), 'onionpost-sandbox-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));


test('sandbox --once: all demo messages delivered, offline mail through carol, exit 0, no tor left', { timeout: 400_000 }, async () => {
  const child = spawn(process.execPath, [bin, 'sandbox', '--once', '--json', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const killer = setTimeout(() => child.kill('SIGINT'), 360_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(killer);
  assert.equal(code, 0, `sandbox failed:\n${err.slice(-3000)}`);
  const summary = JSON.parse(out.trim().split('\n').at(-1)!) as {
    sent: number; delivered: number; results: { state: string; ms: number }[];
    market: { provider: string; listed: boolean; paidBy: string; paidUntil: number; subscribed: boolean; retentionDays: number; quotaMB: number };
    offline: { from: string; to: string; id: string; mailboxes: string[]; heldBy: string[]; fetched: boolean; deleted: boolean; delivered: boolean; ms: Record<string, number>; error?: string };
  };
  // The provider market: carol listed, bob paid on the dev chain and subscribed through Tor.
  assert.deepEqual({ ...summary.market, paidUntil: undefined }, {
    provider: 'carol', listed: true, pricePer30Days: '1 TRX', paidBy: 'bob', paidUntil: undefined, subscribed: true, retentionDays: 30, quotaMB: 64,
  });
  assert.ok(summary.market.paidUntil > Date.now() + 29 * 86_400_000, 'paid for 30 days');
  assert.match(out, /carol is listed in the provider directory \(1 TRX per 30 days\); bob paid until /);
  assert.equal(summary.sent, 4);
  assert.equal(summary.delivered, 4);
  assert.ok(summary.results.every((r) => r.state === 'delivered'));
  assert.match(out, /alice\s+[a-z2-7]{56}\.onion\s+http:\/\/127\.0\.0\.1:\d+\/login\?code=[A-Za-z0-9_-]{22}/);
  // Offline delivery: held at carol's onion while bob was offline, fetched by bob when he came
  // back (and deleted by carol), delivered on bob's own receipt.
  const carolOnion = /carol\s+([a-z2-7]{56}\.onion)\s+http/.exec(out)?.[1];
  assert.ok(carolOnion, 'carol\'s onion is printed');
  const { id, ms, ...offline } = summary.offline;
  assert.match(id, /^[0-9a-f]{32}$/);
  assert.deepEqual(Object.keys(ms), ['inMailbox', 'restarted', 'fetched', 'delivered'], 'each step is timed');
  assert.deepEqual(offline, { from: 'alice', to: 'bob', mailboxes: [carolOnion], heldBy: ['carol'], fetched: true, deleted: true, delivered: true });
  assert.match(out, /the message was "in mailbox": held for bob by carol, his mailbox provider/);
  assert.match(out, /alice saw it delivered, on bob's own receipt/);
  for (const name of ['alice', 'bob', 'carol']) {
    const token = readFileSync(join(dir, name, 'api-token'), 'utf8').trim();
    assert.ok(!out.includes(token) && !err.includes(token), `${name}'s API token is never printed`);
  }
  assert.deepEqual(processesMentioning(dir), [], 'no process (tor) of the sandbox is left');
});
