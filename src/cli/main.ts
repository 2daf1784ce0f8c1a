/**
 * The `onionpost` command. Identity commands (init, address) work on the data dir directly; message
 * commands talk to the running node (`onionpost start`) through its authenticated local API.
 * Errors print one line, `onionpost: <what went wrong> [CODE]`, and exit non-zero; set
 * ONIONPOST_DEBUG=1 for stack traces.
 *
 * Importing this module runs nothing: bin/onionpost.js calls `main(argv)`. Command modules share
 * helpers through common.ts, not through this file.
 */
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { readFileSync } from 'node:fs';
import { describeError, OnionpostError } from '../errors.js';
import { connectToNode, type ApiClient } from '../api/index.js';
import { toHex } from '../bytes.js';
import { print, type GlobalArgs } from './common.js';
import { cliName, dataPaths, defaultDataDir } from './paths.js';
import { readPassphrase } from './prompt.js';
import { short, shortOnion, table, when } from './format.js';
import { registerBridgeCommand } from './bridge-command.js';

export type { GlobalArgs } from './common.js';

function node(args: GlobalArgs): ApiClient {
  return connectToNode(args.dataDir);
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

type Msg = { id: string; direction?: 'in' | 'out'; from?: string; to?: string; peerLabel?: string; subject?: string; state: string; reason?: string; createdAt?: number; receivedAt?: number; deliveredAt?: number; read?: boolean; kind?: string; attempts?: number };

type Register = (cli: Argv<GlobalArgs>) => void;

/**
 * Commands whose modules load heavy libraries (the node with all its layers, tronweb, the EVM dev
 * chain, Tor's test network). They are imported only when the command line names one of them, or
 * names no command we know (help, a typo), so that a command that only asks the running node
 * something (status, inbox, send, ui…) starts in a fraction of the time: see `npm run bench -- cli`.
 */
const LAZY_COMMANDS: readonly { names: readonly string[]; load: () => Promise<Register> }[] = [
  { names: ['start'], load: async () => (await import('./start.js')).registerStartCommand },
  { names: ['sandbox'], load: async () => (await import('./sandbox.js')).registerSandboxCommand },
  { names: ['testnet', 'chain', 'deploy', 'register', 'lookup'], load: async () => (await import('./network-commands.js')).registerNetworkCommands },
  { names: ['providers'], load: async () => (await import('./provider-commands.js')).registerProviderCommands },
];
/** Commands declared in this file or in light modules. */
const LIGHT_COMMANDS: ReadonlySet<string> = new Set(['init', 'address', 'send', 'inbox', 'read', 'outbox', 'status', 'ui', 'contacts', 'bridge']);

/** The registrations `argv` needs: none of the lazy ones for a light command, the one named, or all. */
async function lazyRegistrations(argv: readonly string[]): Promise<Register[]> {
  const word = argv.find((w) => LIGHT_COMMANDS.has(w) || LAZY_COMMANDS.some((c) => c.names.includes(w)));
  if (word !== undefined && LIGHT_COMMANDS.has(word)) return [];
  const chosen = word === undefined ? LAZY_COMMANDS : LAZY_COMMANDS.filter((c) => c.names.includes(word));
  return Promise.all(chosen.map((c) => c.load()));
}

export async function buildCli(argv: string[]): Promise<Argv<GlobalArgs>> {
  const cli = yargs(argv)
    .scriptName('onionpost')
    .usage('onionpost: private mail and chat, node to node over Tor onion services.\n\nUsage: $0 <command> [options]')
    .option('data-dir', { type: 'string', default: defaultDataDir(), defaultDescription: '$ONIONPOST_HOME or $XDG_DATA_HOME/onionpost', describe: 'the node\'s data directory', global: true })
    .option('json', { type: 'boolean', default: false, describe: 'machine-readable output', global: true })
    .option('log-level', { type: 'string', default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'silent'], global: true, describe: 'node log level' })
    .command(
      'init',
      'create a new identity (keys and onion address)',
      (y) => y.option('passphrase-file', { type: 'string', describe: 'read the passphrase from this file (else $ONIONPOST_PASSPHRASE, else a prompt)' })
        .option('kdf', { choices: ['default', 'fast'] as const, default: 'default' as const, hidden: true }),
      async (a) => {
        const { cryptoReady, generateIdentity, KDF_DEFAULT, KDF_FAST, writeKeyFile } = await import('../crypto/index.js');
        await cryptoReady();
        const paths = dataPaths(a.dataDir);
        const passphrase = await readPassphrase({ passphraseFile: a.passphraseFile, confirm: true });
        const id = generateIdentity();
        writeKeyFile(paths.keyFile, id, passphrase, { strength: a.kdf === 'fast' ? KDF_FAST : KDF_DEFAULT });
        print(a, { onion: id.onion, identityKey: toHex(id.identityKey), encryptionKey: toHex(id.encryptionKey), dataDir: a.dataDir }, () =>
          `Created a new identity in ${a.dataDir}\n  address: ${id.onion}\nStart your node with: ${cliName()} start${a.dataDir === defaultDataDir() ? '' : ` --data-dir ${a.dataDir}`}`);
      },
    )
    .command('address', "print this identity's onion address and public keys", (y) => y, async (a) => {
      const { readPublicIdentity } = await import('../crypto/index.js');
      const pub = readPublicIdentity(dataPaths(a.dataDir).keyFile);
      print(a, { onion: pub.onion, identityKey: toHex(pub.identityKey), encryptionKey: toHex(pub.encryptionKey) }, () =>
        `${pub.onion}\n  identity key:   ${toHex(pub.identityKey)}\n  encryption key: ${toHex(pub.encryptionKey)}`);
    })
    .command(
      'send <recipient>',
      'send to an onion address, contact or registry name',
      (y) => y.positional('recipient', { type: 'string', demandOption: true })
        .option('subject', { alias: 's', type: 'string', default: '' })
        .option('body', { alias: 'b', type: 'string', describe: 'message body; read from stdin when omitted' })
        .option('chat', { type: 'boolean', default: false, describe: 'a chat message instead of mail' })
        .option('wait', { type: 'boolean', default: false, describe: 'wait until delivered (or failed, held, expired)' })
        .option('timeout', { type: 'number', default: 120, describe: 'seconds --wait may take' })
        .option('thread', { type: 'string', describe: 'thread id to continue' })
        .option('reply-to', { type: 'string', describe: 'message id this replies to' })
        .option('idempotency-key', { type: 'string', describe: 'your key for this send: running the same command again (e.g. after a lost answer) returns the first message instead of sending twice' }),
      async (a) => {
        const body = a.body ?? (await readStdin());
        const params: Record<string, unknown> = { to: a.recipient, subject: a.subject, body, kind: a.chat ? 'chat' : 'mail' };
        if (a.thread) params.threadId = a.thread;
        if (a.replyTo) params.inReplyTo = a.replyTo;
        if (a.idempotencyKey !== undefined) params.idempotencyKey = a.idempotencyKey;
        if (a.wait) Object.assign(params, { wait: true, waitMs: Math.round(a.timeout * 1000) });
        const r = await node(a).call<{ id: string; state: string; to: string; reason?: string }>('messages.send', params, { timeoutMs: a.timeout * 1000 + 10_000 });
        print(a, r, () => `${r.state === 'delivered' ? 'Delivered' : r.state === 'queued' ? 'Queued' : r.state}: ${r.id} to ${r.to}${r.reason ? ` (${r.reason})` : ''}`);
        if (a.wait && r.state !== 'delivered') process.exitCode = 3;
      },
    )
    .command('inbox', 'list received messages', (y) => y.option('limit', { type: 'number', default: 50 }), async (a) => {
      const list = await node(a).call<Msg[]>('messages.inbox', { limit: a.limit });
      print(a, list, () => list.length === 0 ? 'No messages.' :
        table(['', 'ID', 'FROM', 'RECEIVED', 'SUBJECT'], list.map((m) => [m.read ? ' ' : '*', m.id.slice(0, 12), m.peerLabel ?? shortOnion(m.from), when(m.receivedAt), short(m.kind === 'chat' ? `[chat] ${m.subject ?? ''}` : m.subject, 50)])));
    })
    .command('read <id>', 'show a message (marks it read)', (y) => y.positional('id', { type: 'string', demandOption: true }), async (a) => {
      const m = await node(a).call<Msg & { body: string; events: { at: number; state: string; detail?: string }[] }>('messages.get', { id: a.id });
      print(a, m, () => [
        `${m.direction === 'in' ? 'From' : 'To'}: ${m.peerLabel ? `${m.peerLabel} <${m.from ?? m.to}>` : (m.from ?? m.to)}`,
        `Subject: ${m.subject ?? ''}`,
        `Date: ${when(m.receivedAt ?? m.createdAt)}    State: ${m.state}${m.reason ? ` (${m.reason})` : ''}`,
        `Id: ${m.id}`,
        '',
        m.body,
      ].join('\n'));
    })
    .command('outbox', 'list sent and queued messages with their delivery state', (y) => y.option('limit', { type: 'number', default: 50 }), async (a) => {
      const list = await node(a).call<Msg[]>('messages.outbox', { limit: a.limit });
      print(a, list, () => list.length === 0 ? 'Nothing sent yet.' :
        table(['ID', 'TO', 'STATE', 'CREATED', 'SUBJECT'], list.map((m) => [m.id.slice(0, 12), m.peerLabel ?? shortOnion(m.to), m.reason && m.state !== 'delivered' ? `${m.state} (${m.reason})` : m.state, when(m.createdAt), short(m.subject, 40)])));
    })
    .command('status', "the node's Tor, onion and queue status", (y) => y, async (a) => {
      const s = await node(a).call<{ onion: string; reachable: boolean; tor: { mode: string; bootstrap: number; state?: string }; counts: Record<string, number>; warnings: { message: string }[] }>('node.status');
      print(a, s, () => [
        `onion:     ${s.onion}`,
        `reachable: ${s.reachable ? 'yes' : 'no'}`,
        `tor:       ${s.tor.mode === 'tor' ? `${s.tor.bootstrap}% ${s.tor.state ?? ''}` : s.tor.mode}`,
        `queue:     ${Object.entries(s.counts).map(([k, v]) => `${k} ${v}`).join(', ')}`,
        ...s.warnings.map((w) => `WARNING:   ${w.message}`),
      ].join('\n'));
    })
    .command(
      'ui',
      'print a fresh sign-in link for the web UI (single use, 2 minutes; needs a running node)',
      (y) => y.option('sign-out-all', { type: 'boolean', default: false, describe: 'instead, sign every browser out of the web UI' }),
      async (a) => {
        if (a.signOutAll) {
          const r = await node(a).call<{ revoked: number }>('sessions.revokeAll');
          print(a, r, () => `Signed out ${r.revoked} browser session${r.revoked === 1 ? '' : 's'}.`);
          return;
        }
        const l = await node(a).call<{ url: string; expiresAt: number }>('sessions.loginLink');
        print(a, l, () => `${l.url}\nOpen this link in a browser on this computer within 2 minutes. It signs in one browser, once.`);
      },
    )
    .command('contacts', 'manage contacts and their pinned keys', (y) => y
      .command('list', 'list contacts', (yy) => yy, async (a) => {
        const list = await node(a as unknown as GlobalArgs).call<{ alias: string; onion: string; source: string; registryName?: string; keyChange?: { reason: string } | null }[]>('contacts.list');
        print(a as unknown as GlobalArgs, list, () => list.length === 0 ? 'No contacts.' :
          table(['ALIAS', 'ONION', 'SOURCE', 'WARNING'], list.map((c) => [c.alias, c.onion, c.registryName ? `registry:${c.registryName}` : c.source, c.keyChange ? `KEY CHANGED: ${c.keyChange.reason}` : ''])));
        for (const c of list) if (c.keyChange) process.stderr.write(`warning: ${c.alias}'s keys changed without a statement signed by the pinned key; messages to them are held. Check with them, then: onionpost contacts approve ${c.alias}\n`);
      })
      .command('add <alias> <address>', 'add a contact by onion address or registry name', (yy) => yy.positional('alias', { type: 'string', demandOption: true }).positional('address', { type: 'string', demandOption: true }), async (a) => {
        const c = await node(a as unknown as GlobalArgs).call<{ alias: string; onion: string }>('contacts.add', { alias: a.alias, address: a.address });
        print(a as unknown as GlobalArgs, c, () => `Added ${c.alias} <${c.onion}>`);
      })
      .command('remove <alias>', 'forget a contact', (yy) => yy.positional('alias', { type: 'string', demandOption: true }), async (a) => {
        const r = await node(a as unknown as GlobalArgs).call<{ removed: boolean }>('contacts.remove', { alias: a.alias });
        print(a as unknown as GlobalArgs, r, () => (r.removed ? `Removed ${a.alias}` : `No contact named ${a.alias}`));
      })
      .command('approve <alias>', "accept a contact's changed keys and release held messages", (yy) => yy.positional('alias', { type: 'string', demandOption: true }), async (a) => {
        const c = await node(a as unknown as GlobalArgs).call<{ alias: string; onion: string }>('contacts.approveKeyChange', { alias: a.alias });
        print(a as unknown as GlobalArgs, c, () => `Approved the new keys of ${c.alias} <${c.onion}>`);
      })
      .demandCommand(1, 'name a contacts subcommand: list, add, remove, approve'), () => {})
    .demandCommand(1, 'name a command; see --help')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version as string)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      throw new OnionpostError('USAGE', `${msg} (see --help)`);
    });
  for (const register of await lazyRegistrations(argv)) register(cli as unknown as Argv<GlobalArgs>);
  registerBridgeCommand(cli as unknown as Argv<GlobalArgs>);
  return cli as unknown as Argv<GlobalArgs>;
}

/** Runs the CLI on `argv` (the arguments after the script, as `hideBin(process.argv)` gives them). bin/onionpost.js calls it. */
export async function main(argv: string[] = hideBin(process.argv)): Promise<void> {
  // Library timers are unref'd (they must not keep a host process alive); a command, though, runs
  // until it settles, or Node would exit 0 in the middle of e.g. a registry commitment wait.
  const keepAlive = setInterval(() => {}, 1 << 30);
  try {
    await (await buildCli(argv)).parseAsync();
  } catch (err) {
    if (process.env.ONIONPOST_DEBUG) console.error(err);
    process.stderr.write(`onionpost: ${describeError(err)}\n`);
    process.exitCode = err instanceof OnionpostError && err.code === 'USAGE' ? 2 : 1;
  } finally {
    clearInterval(keepAlive);
  }
}

