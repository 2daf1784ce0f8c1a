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
import { readFileSync, statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { describeError, OnionpostError } from '../errors.js';
import { connectToNode, deliveryLine, type ApiClient, type DeliveryView } from '../api/index.js';
import { toHex } from '../bytes.js';
import { print, type GlobalArgs } from './common.js';
import { cliName, dataPaths, defaultDataDir } from './paths.js';
import { readPassphrase } from './prompt.js';
import { short, table, when } from './format.js';
import { registerBridgeCommand, registerSettingsCommand } from './bridge-command.js';
import { peerLabel, registerMailCommands } from './mail-commands.js';
import { registerMailboxCommands } from './mailbox-commands.js';

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

type Msg = {
  id: string; direction: 'in' | 'out'; from?: string; to?: string; fromName?: string | null; toName?: string | null; peerFingerprint?: string;
  peerLabel?: string; subject?: string; state: string; reason?: string; createdAt?: number; receivedAt?: number; deliveredAt?: number; read?: boolean;
  kind?: string; attempts?: number; delivery?: DeliveryView | null; attachmentCount?: number;
};

/** Media types for common file endings (what a mail client would say); anything else is octet-stream. */
const MEDIA_TYPES: Record<string, string> = {
  '.txt': 'text/plain', '.md': 'text/markdown', '.csv': 'text/csv', '.html': 'text/html', '.pdf': 'application/pdf', '.json': 'application/json',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp', '.svg': 'image/svg+xml',
  '.zip': 'application/zip', '.gz': 'application/gzip', '.odt': 'application/vnd.oasis.opendocument.text', '.mp3': 'audio/mpeg', '.ogg': 'audio/ogg',
};

/** "14:02" today, else "2026-11-29 14:02": for the outbox's plain-words reasons. */
function clockTime(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return d.toDateString() === new Date().toDateString() ? hm : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${hm}`;
}

/** A message's state with why, in plain words (never a bare code). */
function stateWords(m: Msg): string {
  if (m.state === 'delivered' || m.direction === 'in') return m.state;
  return m.delivery ? `${m.state}: ${deliveryLine(m.delivery, m.state, Date.now(), clockTime)}` : m.reason ? `${m.state} (${m.reason})` : m.state;
}

/** Who, for a reader: the name, or for a stranger the onion and the start of their key. */
function who(m: Msg): string {
  const onion = m.direction === 'out' ? m.to : m.from;
  const name = m.direction === 'out' ? m.toName : m.fromName;
  return name ? `${name} <${onion}>` : `${onion} (not a contact; key ${m.peerFingerprint ?? '?'}…)`;
}

/** Reads `--attach` files, with the node's limits stated before anything is sent. */
async function readAttachments(api: ApiClient, files: string[], text: { subject: string; body: string }) {
  if (files.length === 0) return [];
  const limits = await api.call<{ maxAttachments: number; capacity: number }>('messages.limits');
  if (files.length > limits.maxAttachments) throw new OnionpostError('TOO_LARGE', `${files.length} files; a message carries at most ${limits.maxAttachments}`);
  let total = Buffer.byteLength(text.subject) + Buffer.byteLength(text.body);
  const out = files.map((f) => {
    let size: number;
    try {
      size = statSync(f).size;
    } catch (err) {
      throw new OnionpostError('NO_FILE', `cannot read ${f}`, { cause: err });
    }
    const name = basename(f);
    const mediaType = MEDIA_TYPES[extname(f).toLowerCase()] ?? 'application/octet-stream';
    total += 6 + Buffer.byteLength(name) + Buffer.byteLength(mediaType) + size;
    return { path: f, name, mediaType, size };
  });
  if (total > limits.capacity) {
    throw new OnionpostError('TOO_LARGE', `subject, text and files take ${total} bytes; one message carries at most ${limits.capacity} (${(limits.capacity / 1024).toFixed(1)} KiB) with at most ${limits.maxAttachments} files: send the files in several messages`);
  }
  return out.map((f) => ({ name: f.name, mediaType: f.mediaType, data: readFileSync(f.path).toString('base64') }));
}

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
  { names: ['testnet', 'chain', 'deploy', 'register', 'update', 'lookup'], load: async () => (await import('./network-commands.js')).registerNetworkCommands },
  { names: ['providers'], load: async () => (await import('./provider-commands.js')).registerProviderCommands },
  { names: ['keys'], load: async () => (await import('./keys-command.js')).registerKeysCommands },
];
/** Commands declared in this file or in light modules. */
const LIGHT_COMMANDS: ReadonlySet<string> = new Set(['init', 'address', 'send', 'inbox', 'read', 'outbox', 'status', 'ui', 'contacts', 'bridge', 'mailboxes']);

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
        .option('idempotency-key', { type: 'string', describe: 'your key for this send: running the same command again (e.g. after a lost answer) returns the first message instead of sending twice' })
        .option('attach', { type: 'string', array: true, default: [] as string[], describe: 'attach a file (repeat for more; at most 16, about 255 KiB in all with the text)' }),
      async (a) => {
        const body = a.body ?? (await readStdin());
        const api = node(a);
        const attachments = await readAttachments(api, a.attach as string[], { subject: a.subject, body });
        const params: Record<string, unknown> = { to: a.recipient, subject: a.subject, body, kind: a.chat ? 'chat' : 'mail', ...(attachments.length ? { attachments } : {}) };
        if (a.thread) params.threadId = a.thread;
        if (a.replyTo) params.inReplyTo = a.replyTo;
        if (a.idempotencyKey !== undefined) params.idempotencyKey = a.idempotencyKey;
        if (a.wait) Object.assign(params, { wait: true, waitMs: Math.round(a.timeout * 1000) });
        const r = await api.call<{ id: string; state: string; to: string; reason?: string }>('messages.send', params, { timeoutMs: a.timeout * 1000 + 10_000 });
        print(a, r, () => `${r.state === 'delivered' ? 'Delivered' : r.state === 'queued' ? 'Queued' : r.state}: ${r.id} to ${r.to}${r.reason ? ` (${r.reason})` : ''}`);
        if (a.wait && r.state !== 'delivered') process.exitCode = 3;
      },
    )
    .command('inbox', 'list received messages (--archived: the archive)', (y) => y.option('limit', { type: 'number', default: 50 }).option('archived', { type: 'boolean', default: false }), async (a) => {
      const list = await node(a).call<Msg[]>('messages.inbox', { limit: a.limit, archived: a.archived });
      print(a, list, () => list.length === 0 ? 'No messages.' :
        table(['', 'ID', 'FROM', 'RECEIVED', 'SUBJECT'], list.map((m) => [m.read ? ' ' : '*', m.id.slice(0, 12), peerLabel(m), when(m.receivedAt), short(`${m.kind === 'chat' ? '[chat] ' : ''}${m.subject ?? ''}${m.attachmentCount ? ` [${m.attachmentCount} file${m.attachmentCount === 1 ? '' : 's'}]` : ''}`, 60)])));
    })
    .command('read <id>', 'show a message (marks it read)', (y) => y.positional('id', { type: 'string', demandOption: true }), async (a) => {
      const m = await node(a).call<Msg & { body: string; attachments: { name: string; size: number; mediaType: string }[]; events: { at: number; state: string; detail?: string }[] }>('messages.get', { id: a.id });
      print(a, m, () => [
        `${m.direction === 'in' ? 'From' : 'To'}: ${who(m)}`,
        `Subject: ${m.subject ?? ''}`,
        `Date: ${when(m.receivedAt ?? m.createdAt)}    State: ${stateWords(m)}`,
        `Id: ${m.id}`,
        ...(m.attachments.length ? [`Files: ${m.attachments.map((f) => `${f.name} (${f.size} bytes)`).join(', ')}  (save them with: ${cliName()} save ${m.id.slice(0, 12)})`] : []),
        '',
        m.body,
      ].join('\n'));
    })
    .command('outbox', 'list sent and queued messages with their delivery state', (y) => y.option('limit', { type: 'number', default: 50 }), async (a) => {
      const list = await node(a).call<Msg[]>('messages.outbox', { limit: a.limit });
      print(a, list, () => list.length === 0 ? 'Nothing sent yet.' :
        table(['ID', 'TO', 'CREATED', 'SUBJECT', 'STATE'], list.map((m) => [m.id.slice(0, 12), peerLabel(m), when(m.createdAt), short(m.subject, 30), stateWords(m)])));
    })
    .command('status', "the node's Tor, onion and queue status", (y) => y, async (a) => {
      const s = await node(a).call<{ onion: string; reachable: boolean; tor: { mode: string; bootstrap: number; state?: string }; counts: Record<string, number>; mailboxes?: { onion: string }[]; warnings: { message: string }[] }>('node.status');
      print(a, s, () => [
        `onion:     ${s.onion}`,
        `reachable: ${s.reachable ? 'yes' : 'no'}`,
        `tor:       ${s.tor.mode === 'tor' ? `${s.tor.bootstrap}% ${s.tor.state ?? ''}` : s.tor.mode}`,
        `queue:     ${Object.entries(s.counts).map(([k, v]) => `${k} ${v}`).join(', ')}`,
        `mailboxes: ${s.mailboxes?.length ? s.mailboxes.map((m) => m.onion).join(', ') : 'none'}`,
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
      .command('reject <alias>', "refuse a contact's changed keys: keep the pinned ones and cancel the held messages", (yy) => yy.positional('alias', { type: 'string', demandOption: true }), async (a) => {
        const c = await node(a as unknown as GlobalArgs).call<{ alias: string; cancelled: number }>('contacts.rejectKeyChange', { alias: a.alias });
        print(a as unknown as GlobalArgs, c, () => `Kept the pinned keys of ${c.alias}; ${c.cancelled} held message${c.cancelled === 1 ? '' : 's'} cancelled`);
      })
      .command('verify <alias>', 'show the safety number to compare with a contact (both of you see the same digits)', (yy) => yy.positional('alias', { type: 'string', demandOption: true }), async (a) => {
        const r = await node(a as unknown as GlobalArgs).call<{ alias: string; digits: string; groups: string[] }>('contacts.safetyNumber', { alias: a.alias });
        print(a as unknown as GlobalArgs, r, () => [`Safety number with ${r.alias} (compare it with theirs, in person or on a call):`, '', ...[0, 4, 8].map((i) => `  ${r.groups.slice(i, i + 4).join(' ')}`)].join('\n'));
      })
      .demandCommand(1, 'name a contacts subcommand: list, add, remove, approve, reject, verify'), () => {})
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
  registerSettingsCommand(cli as unknown as Argv<GlobalArgs>);
  registerMailCommands(cli as unknown as Argv<GlobalArgs>);
  registerMailboxCommands(cli as unknown as Argv<GlobalArgs>);
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

