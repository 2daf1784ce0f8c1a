/**
 * Every command the README shows and the sandbox prints, typed as printed, against a running
 * sandbox: alice, bob and carol on the private Tor network, names on the dev chain. Commands run
 * through `sh -c` from the repository root, as a newcomer runs them from a clone (`npx onionpost`).
 *
 * The README's own commands act as alice (ONIONPOST_HOME = her data dir; a fresh dir for `init`).
 * Placeholders the README uses (`<id>`, `<dir>`) are filled in by this test, and a few commands
 * cannot run here (public TRON networks, a tor that would reach the internet, commands that serve
 * until Ctrl-C and are run elsewhere): each is listed in SKIPPED with the reason, and the test
 * fails on a README command that is neither run nor listed.
 *
 * Two things keep this within the test budget on a busy 2-core machine. The sandbox joins the tier's
 * private Tor network (`sandbox --tor-network`) instead of starting its own (`sandbox.test.ts` runs
 * it with a network of its own). And npm's own start-up (about 3 s a call under load) is paid once:
 * the first test checks that the real `npx onionpost` runs this package's CLI, and the commands
 * then run with an `npx` first on PATH that does exactly that for `onionpost` without starting npm.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectToNode } from '../../src/api/index.js';
import { cryptoReady, generateIdentity, readPublicIdentity } from '../../src/crypto/index.js';
import { processesMentioning } from '../fixtures/tor.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = join(REPO, 'bin', 'onionpost.js');
const TOR_NETWORK = process.env['ONIONPOST_TEST_TOR_NETWORK']!;
const root = mkdtempSync(join(tmpdir(), 'onionpost-cli-commands-'));
const sandboxDir = join(root, 'sandbox');
const home = join(root, 'home');
const xdg = join(root, 'xdg');
/** Alice's data dir in the sandbox: the README's commands act as her. */
const aliceDir = join(sandboxDir, 'alice');
const shim = join(root, 'shim');
const env = {
  ...process.env, HOME: home, XDG_DATA_HOME: xdg, ONIONPOST_PASSPHRASE: 'sandbox', ONIONPOST_HOME: aliceDir,
  npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false',
  PATH: `${shim}:${process.env['PATH']}`,
};
const started = Date.now();
/** Progress with elapsed seconds, for a run that is slow to find out where. */
const note = (what: string) => process.stderr.write(`[cli-commands +${((Date.now() - started) / 1000).toFixed(1)} s] ${what}\n`);
delete (env as Record<string, unknown>).ONIONPOST_DEPLOYMENTS;
delete (env as Record<string, unknown>).TRON_PRIVATE_KEY;

/** README commands that are not run here, and why. */
const SKIPPED: Record<string, string> = {
  'npx onionpost start': 'its tor would bootstrap against the public Tor network; the same command runs below with --tor-network on the private one',
  'npx onionpost deploy --network nile --tron-key-file key.hex': 'Nile is a public TRON network',
  'npx onionpost register alice --network nile --tron-key-file key.hex': 'Nile is a public TRON network',
  'npx onionpost start --network nile': 'Nile is a public TRON network',
  'npx onionpost chain': 'serves 127.0.0.1:9090 until Ctrl-C; test/component/cli.test.ts runs it on a free port, and the sandbox serves the same dev chain',
  'npx onionpost testnet up': 'about a minute; the test runner and the sandbox bring up the same network with the same code',
  'npx onionpost testnet down': 'stops what testnet up started (see above)',
  'npx onionpost sandbox': 'this test runs it (with --dir and --tor-network); test/tor/sandbox.test.ts runs npm start -- --once',
  'npx onionpost start --smtp-port 0 --imap-port 0': 'its tor would bootstrap against the public Tor network; the sandbox\'s nodes run the bridge on any free ports, and `bridge` below asks one',
  'npx onionpost start --provide-mailbox': 'its tor would bootstrap against the public Tor network; test/component covers the provider role',
  'npx onionpost start --hidden': 'its tor would bootstrap against the public Tor network; test/component/hidden.test.ts runs a hidden node',
};

let sandbox: ChildProcess | undefined;
let sandboxOut = '';
let sandboxErr = '';

/** The test's own questions go straight to a node's API (a CLI process each would cost seconds on a busy machine). */
function api<T>(dataDir: string, method: string, params: Record<string, unknown> = {}): Promise<T> {
  return connectToNode(dataDir).call<T>(method, params);
}
const aliceOnion = () => readPublicIdentity(join(aliceDir, 'identity.json')).onion;

/** A command as a user types it: sh -c, from the repository root. */
function sh(command: string, extraEnv: Record<string, string> = {}, timeoutMs = 120_000): { code: number | null; out: string; err: string } {
  const r = spawnSync('/bin/sh', ['-c', command], { cwd: REPO, env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function ok(command: string, r: { code: number | null; out: string; err: string }): void {
  assert.equal(r.code, 0, `\`${command}\` failed (${r.code}):\n${r.out}\n${r.err}`);
}

function failsWith(command: string, r: { code: number | null; err: string }, codes: string[]): void {
  assert.notEqual(r.code, 0, `\`${command}\` should have failed`);
  assert.match(r.err, new RegExp(`\\[(${codes.join('|')})\\]\\n?$`), `\`${command}\`: ${r.err}`);
}

/** Every `npx onionpost …` command in the README: lines of its sh blocks and inline code. */
function readmeCommands(): string[] {
  const text = readFileSync(join(REPO, 'README.md'), 'utf8');
  const found = new Set<string>();
  for (const block of text.matchAll(/```sh\n([\s\S]*?)```/g)) {
    for (const line of block[1]!.split('\n')) {
      const cmd = line.replace(/\s+#.*$/, '').trim();
      if (/(^|\| )npx onionpost /.test(cmd)) found.add(cmd);
    }
  }
  for (const m of text.matchAll(/`(npx onionpost [^`]+)`/g)) found.add(m[1]!.trim());
  return [...found];
}


async function until<T>(what: string, ms: number, fn: () => T | undefined | null | false): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

before(async () => {
  await cryptoReady();
  mkdirSync(join(home, 'Pictures'), { recursive: true });
  mkdirSync(join(home, 'Downloads'), { recursive: true });
  writeFileSync(join(home, 'Pictures', 'a.jpg'), randomBytes(20_000));
  writeFileSync(join(home, 'Pictures', 'b.jpg'), randomBytes(30_000));
  // `npx onionpost …` without npm's start-up: what npx does for this package, directly.
  mkdirSync(shim);
  writeFileSync(join(shim, 'npx'), `#!/bin/sh\nif [ "$1" = onionpost ]; then shift; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"; fi\necho "npx shim: only onionpost" >&2; exit 127\n`, { mode: 0o755 });
  sandbox = spawn(process.execPath, [BIN, 'sandbox', '--dir', sandboxDir, '--tor-network', TOR_NETWORK], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  sandbox.stdout!.on('data', (d) => (sandboxOut += d));
  sandbox.stderr!.on('data', (d) => (sandboxErr += d));
  note('sandbox started');
  await until('the sandbox to print its commands', 240_000, () => {
    if (sandbox!.exitCode !== null) throw new Error(`the sandbox exited:\n${sandboxErr.slice(-3000)}`);
    return /Ctrl-C stops everything/.test(sandboxOut);
  });
  note('sandbox ready');
});

after(async () => {
  if (sandbox && sandbox.exitCode === null) {
    sandbox.kill('SIGINT');
    await new Promise((r) => sandbox!.once('exit', r));
  }
  rmSync(root, { recursive: true, force: true });
});

test('the sandbox delivered its demo and prints commands that work as printed', { timeout: 300_000 }, () => {
  // The real npx, once: from the repository it runs this package's CLI.
  const real = spawnSync('npx', ['onionpost', '--version'], { cwd: REPO, env: { ...env, PATH: process.env['PATH'] }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(real.status, 0, real.stderr);
  assert.equal(real.stdout.trim(), (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version);
  assert.match(sandboxOut, /Summary: 4 sent, 4 delivered/);
  // The "Try it" lines, and every command quoted in the rest of the output (sign-in, mail client).
  const tryIt = sandboxOut.split('Try it (in another terminal):\n')[1]!.split('\n');
  const block = tryIt.slice(0, tryIt.findIndex((l) => !l.startsWith('  '))).map((l) => l.trim());
  assert.ok(block.length >= 5, sandboxOut);
  for (const c of block) assert.match(c, /^npx onionpost /, 'from a clone, onionpost is not on PATH');
  assert.doesNotMatch(sandboxOut, /(?<!npx )\bonionpost (--data-dir|init|start|ui|bridge|inbox|send|status|lookup)\b/, 'every command it prints starts with npx');
  const quoted = [...sandboxOut.matchAll(/npx onionpost [^;)\n]*/g)].map((m) => m[0].replace(/\s+#.*$/, '').trim());
  const printed = [...new Set([...block.map((c) => c.replace(/\s+#.*$/, '')), ...quoted])];
  for (const command of printed) {
    if (/ start --tor-network /.test(command)) continue; // a node that runs until Ctrl-C: the next test
    const r = sh(command.replaceAll('<node dir>', aliceDir));
    note(command);
    ok(command, r);
    if (/ lookup alice /.test(command)) assert.equal((JSON.parse(r.out) as { onion: string }).onion, aliceOnion(), 'the sandbox\'s alice, found through its marker');
    if (/ send alice /.test(command)) assert.match(r.out, /^Delivered: /);
    if (/ ui /.test(command)) assert.match(r.out, /http:\/\/127\.0\.0\.1:\d+\/login\?code=/);
  }
});

test('every README command, as printed, against the sandbox', { timeout: 400_000 }, async () => {
  const commands = readmeCommands();
  const ran = new Set<string>();
  /** Runs README command `c` as printed, with its placeholders filled in. */
  const run = (c: string, fill: Record<string, string> = {}, extraEnv: Record<string, string> = {}) => {
    assert.ok(commands.includes(c), `the README no longer says \`${c}\``);
    ran.add(c);
    const r = sh(Object.entries(fill).reduce((cmd, [k, v]) => cmd.replaceAll(k, v), c), extraEnv);
    note(c);
    return r;
  };
  const one = (c: string) => {
    assert.ok(commands.includes(c), `the README no longer says \`${c}\``);
    return c;
  };

  // A newcomer's own identity, then their node on the sandbox's Tor network.
  const newbie = join(root, 'newbie');
  ok('init', run('npx onionpost init', {}, { ONIONPOST_HOME: newbie }));
  const startCmd = one('npx onionpost start --tor-network <dir>');
  ran.add(startCmd);
  // Its own process group, so that Ctrl-C reaches the node and not only the shell.
  const node = spawn('/bin/sh', ['-c', startCmd.replace('<dir>', TOR_NETWORK)], { cwd: REPO, env: { ...env, ONIONPOST_HOME: newbie }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let nodeOut = '';
  node.stdout!.on('data', (d) => (nodeOut += d));
  node.stderr!.on('data', (d) => (nodeOut += d));
  try {
    await until('the newcomer\'s node to start', 60_000, () => {
      if (node.exitCode !== null) throw new Error(`start exited: ${nodeOut}`);
      return /onionpost node starting/.test(nodeOut);
    });
    note('newcomer node started');
    const deadline = Date.now() + 120_000;
    for (let reachable = false; !reachable; await new Promise((r) => setTimeout(r, 500))) {
      if (Date.now() > deadline) throw new Error(`the newcomer's onion did not become reachable; node said: ${nodeOut.slice(-2000)}`);
      reachable = await api<{ reachable: boolean }>(newbie, 'node.status').then((s) => s.reachable, () => false);
    }
    note('newcomer reachable');
  } finally {
    process.kill(-node.pid!, 'SIGINT');
    await new Promise((r) => (node.exitCode !== null ? r(null) : node.once('exit', r)));
  }
  assert.deepEqual(processesMentioning(newbie), [], 'the newcomer\'s tor stopped with the node');

  // Alice's everyday commands.
  const addr = run('npx onionpost address --json');
  ok('address', addr);
  assert.equal((JSON.parse(addr.out) as { onion: string }).onion, aliceOnion());
  const ui = run('npx onionpost ui');
  ok('ui', ui);
  assert.match(ui.out, /\/login\?code=/);
  const lunch = run('npx onionpost send bob -s "Lunch?" -b "Friday noon?" --wait');
  ok('send', lunch);
  assert.match(lunch.out, /^Delivered: /);
  ok('echo | send', run('echo "long body" | npx onionpost send bob -s "subject"'));
  for (const c of ['npx onionpost inbox', 'npx onionpost status', 'npx onionpost contacts list']) ok(c, run(c));
  const inbox = await api<{ id: string; fromName: string | null; subject: string }[]>(aliceDir, 'messages.inbox');
  assert.ok(inbox.length > 0 && inbox.every((m) => m.fromName !== null), 'registered senders are shown by name');
  const read = run('npx onionpost read <id>', { '<id>': inbox[0]!.id.slice(0, 12) });
  ok('read', read);
  assert.match(read.out, new RegExp(`^From: ${inbox[0]!.fromName} <`));

  const files = run('npx onionpost send bob -s "Photos" -b "Two of them" --attach ~/Pictures/a.jpg --attach ~/Pictures/b.jpg');
  ok('send --attach', files);
  const filesId = files.out.match(/: ([0-9a-f]{32}) /)![1]!;
  const found = run('npx onionpost search lunch friday');
  ok('search', found);
  assert.match(found.out, /Lunch/);
  ok('save', run('npx onionpost save <id> --dir ~/Downloads', { '<id>': filesId.slice(0, 12) }));
  assert.deepEqual(readFileSync(join(home, 'Downloads', 'b.jpg')), readFileSync(join(home, 'Pictures', 'b.jpg')));

  ok('archive', run('npx onionpost archive <id>', { '<id>': inbox[0]!.id }));
  assert.ok(!(await api<{ id: string }[]>(aliceDir, 'messages.inbox')).some((m) => m.id === inbox[0]!.id), 'archived: out of the inbox');
  ok('unread', run('npx onionpost unread <id>', { '<id>': inbox[0]!.id }));

  // A message that cannot be delivered (nobody runs that onion): retry, cancel, delete.
  const stuckId = (await api<{ id: string }>(aliceDir, 'messages.send', { to: generateIdentity().onion, subject: 'nobody home', body: '.' })).id;
  const deadline = Date.now() + 60_000;
  for (let tried = false; !tried; await new Promise((r) => setTimeout(r, 500))) {
    if (Date.now() > deadline) throw new Error('no failed attempt to nobody within a minute');
    const m = (await api<{ id: string; state: string; attempts: number }[]>(aliceDir, 'messages.outbox')).find((x) => x.id === stuckId)!;
    tried = m.state === 'queued' && m.attempts >= 1;
  }
  // Between tries it says why in plain words (during one: "being handed to the recipient's node now").
  const why = /queued: the recipient's node has been offline since \d\d:\d\d; next try (in \d+ (s|min)|now)/;
  await until('the outbox to say why', 90_000, () => {
    const r = run('npx onionpost outbox');
    ok('outbox', r);
    assert.match(r.out, /nobody home +(sending: being handed to the recipient's node now|queued: )/);
    return why.test(r.out);
  });
  ok('retry', run('npx onionpost retry <id>', { '<id>': stuckId }));
  // While an attempt is on its way, cancel says to try again in a moment: as a person would, do.
  const cancel = await until('cancel to go through', 60_000, () => {
    const r = run('npx onionpost cancel <id>', { '<id>': stuckId });
    if (r.code !== 0 && !/\[BAD_STATE\]/.test(r.err)) ok('cancel', r);
    return r.code === 0 ? r : null;
  });
  assert.match(cancel.out, /^Cancelled /);
  ok('delete', run('npx onionpost delete <id>', { '<id>': stuckId }));

  const verify = run('npx onionpost contacts verify bob');
  ok('contacts verify', verify);
  assert.match(verify.out, /(\d{5} ){3}\d{5}/);
  failsWith('contacts reject', run('npx onionpost contacts reject bob'), ['NO_KEY_CHANGE']);
  const receipts = run('npx onionpost settings --read-receipts on');
  ok('settings', receipts);
  assert.match(receipts.out, /^read receipts: on/);
  assert.deepEqual(await api(aliceDir, 'settings.get'), { readReceipts: true });

  // The mail bridge of alice's node.
  ok('bridge', run('npx onionpost bridge'));
  const bridge = run('npx onionpost bridge --json');
  ok('bridge --json', bridge);
  assert.match((JSON.parse(bridge.out) as { address: string }).address, /@/);

  // Mailbox providers in the sandbox's directory: alice lists her node, bob's account pays it.
  ok('providers register', run('npx onionpost providers register --stake 100 --price 5 --retention-days 30 --dev-account 1 --network dev'));
  const listed = run('npx onionpost providers list --network dev');
  ok('providers list', listed);
  assert.match(listed.out, new RegExp(aliceOnion().slice(0, 16)));
  ok('providers show', run('npx onionpost providers show <owner or onion> --mine', { '<owner or onion>': aliceOnion() }));
  ok('providers pay', run('npx onionpost providers pay <owner or onion> --periods 2 --max-price 5 --dev-account 2', { '<owner or onion>': aliceOnion() }));

  // Alice's node subscribes at carol's provider through Tor (paid first: carol is listed as a priced
  // provider), lists it, and drops it again.
  const carolOnion = readPublicIdentity(join(sandboxDir, 'carol', 'identity.json')).onion;
  ok('pay carol', sh(`npx onionpost providers pay ${carolOnion} --periods 1 --max-price 5 --dev-account 2`));
  const added = run('npx onionpost mailboxes add <provider onion>', { '<provider onion>': carolOnion });
  ok('mailboxes add', added);
  assert.match(added.out, new RegExp(`Subscribed at ${carolOnion}`));
  const mine = run('npx onionpost mailboxes list');
  ok('mailboxes list', mine);
  assert.match(mine.out, new RegExp(carolOnion));
  assert.deepEqual((await api<{ mailboxes: { onion: string }[] }>(aliceDir, 'node.status')).mailboxes.map((m) => m.onion), [carolOnion]);
  ok('mailboxes scores', run('npx onionpost mailboxes scores'));
  const spare = run('npx onionpost mailboxes spare <provider onion>', { '<provider onion>': carolOnion });
  ok('mailboxes spare', spare);
  assert.match(spare.out, new RegExp(`Spare providers: ${carolOnion}`));
  assert.deepEqual(await api<string[]>(aliceDir, 'mailboxes.removeSpare', { onion: carolOnion }), []);
  // …and publishes it in her registry record (she registered with dev account 1 in the sandbox).
  ok('update', run('npx onionpost update --network dev --dev-account 1'));
  const record = sh('npx onionpost lookup alice --network dev --json');
  ok('lookup after update', record);
  assert.deepEqual((JSON.parse(record.out) as { mailboxes: string[] }).mailboxes, [carolOnion]);
  ok('mailboxes remove', run('npx onionpost mailboxes remove <provider onion>', { '<provider onion>': carolOnion }));
  assert.deepEqual((await api<{ mailboxes: { onion: string }[] }>(aliceDir, 'node.status')).mailboxes, []);
  // The same through the directory: carol found by her onion, subscribed at, then dropped.
  const used = run('npx onionpost providers use <owner or onion>', { '<owner or onion>': carolOnion });
  ok('providers use', used);
  assert.match(used.out, new RegExp(`Using ${carolOnion} \\(1 TRX per 30 days; stake 100 TRX\\): it keeps mail 30 days, up to 64 MB`));
  assert.deepEqual((await api<{ mailboxes: { onion: string }[] }>(aliceDir, 'node.status')).mailboxes.map((m) => m.onion), [carolOnion]);
  ok('providers drop', run('npx onionpost providers drop <owner or onion>', { '<owner or onion>': carolOnion }));
  assert.deepEqual((await api<{ mailboxes: { onion: string }[] }>(aliceDir, 'node.status')).mailboxes, []);

  // Names offline: while the sandbox runs, --network dev is its chain and registry.
  ok('deploy --network dev', run('npx onionpost deploy --network dev'));
  failsWith('register (alice is registered already)', run('npx onionpost register alice --network dev --dev-account 1'), ['ALREADY_REGISTERED', 'NAME_TAKEN']);
  const look = run('npx onionpost lookup alice --network dev --json');
  ok('lookup', look);
  assert.equal((JSON.parse(look.out) as { onion: string }).onion, aliceOnion());

  // Last, as it may make alice's node subscribe at a directory provider: the directory policy.
  ok('mailboxes policy on', run('npx onionpost mailboxes policy --directory on --target 2 --min-stake 200 --min-retention-days 14 --max-price 5'));
  const policy = run('npx onionpost mailboxes policy');
  ok('mailboxes policy', policy);
  assert.match(policy.out, /on/);

  const missing = commands.filter((c) => !ran.has(c) && !SKIPPED[c]);
  assert.deepEqual(missing, [], 'README commands neither run nor skipped with a reason');
  for (const s of Object.keys(SKIPPED)) assert.ok(commands.includes(s), `SKIPPED lists \`${s}\`, which the README no longer has`);
});

test('Ctrl-C stops the sandbox and leaves no process of it running', { timeout: 60_000 }, async () => {
  sandbox!.kill('SIGINT');
  const code = await new Promise<number | null>((r) => (sandbox!.exitCode !== null ? r(sandbox!.exitCode) : sandbox!.once('exit', (c) => r(c))));
  assert.equal(code, 130);
  assert.deepEqual(processesMentioning(sandboxDir), []);
  assert.equal(existsSync(join(xdg, 'onionpost', 'sandbox.json')), false, 'its marker is gone');
});
