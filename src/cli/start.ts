/**
 * `onionpost start`: unlocks the identity, runs the node in the foreground until Ctrl-C, and writes
 * `api.json` so the other commands find it. Tor by default; `--loopback DIR` runs without Tor
 * (nodes on one machine find each other through DIR).
 *
 * Output: what a person reads (the address, the web UI's sign-in link as soon as the API is up,
 * Tor's progress, new mail) goes to stdout; the log goes to stderr (readable on a terminal, JSON
 * lines otherwise) or, with --log-file, to a file. The API token is never printed.
 */
import { randomBytes } from 'node:crypto';
import { Agent, type ClientRequestArgs } from 'node:http';
import type { Duplex } from 'node:stream';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { cryptoReady, ensurePrivateDir, onionKeyBlob, onionOfSeed, openKeyFile } from '../crypto/index.js';
import { fromHex } from '../bytes.js';
import { createLogger, logDestination, type Logger } from '../log.js';
import { OnionpostNode, loopbackNetwork, torNetwork, TorDownError, type PeerNetwork, type TorNetwork } from '../node/index.js';
import { createProviderDirectory, createTronRegistry, type IdentityRegistry, type ProviderDirectory } from '../registry/index.js';
import { readTestNetwork, TorSocksAgent } from '../tor/index.js';
import type { GlobalArgs } from './common.js';
import { BRIDGE_DEFAULT_PORTS } from './bridge-command.js';
import { DEFAULT_PROVIDER_LIMITS } from '../provider/index.js';
import { cliName, dataPaths, defaultDataDir } from './paths.js';
import { CliError, readPassphrase } from './prompt.js';
import { directoryTarget, registryTarget } from './registry-config.js';
import { loadWebHandler } from './web.js';

/** The name recorded by `register` for `network` in `file`, if any. */
export function registeredName(file: string, network: string): string | undefined {
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as { network?: string; name?: string };
    return r.network === network && typeof r.name === 'string' ? r.name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `keys rotate` as the user would type it here: with the TRON key option their network takes (the
 * node does not know which key owns the record), or --local-only for an identity with no record.
 */
export function rotateCommand(cli: string, dirArg: string, network: string | null, fullHost?: string): string {
  if (network === null) return `${cli}${dirArg} keys rotate --local-only`;
  const host = fullHost ? ` --full-host ${fullHost}` : '';
  return `${cli}${dirArg} keys rotate --network ${network}${host} ${network === 'dev' ? '--dev-account <N>' : '--tron-key-file <file with your TRON key>'}`;
}

/** Reads the API token, making one (32 random bytes, 0600) on first start. */
export function ensureApiToken(path: string): string {
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const token = randomBytes(32).toString('hex');
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return token;
}

/** An agent that dials through whatever SOCKS port our (possibly restarted) tor has now. */
class CurrentTorAgent extends Agent {
  readonly #net: TorNetwork;
  #inner: TorSocksAgent | undefined;
  constructor(net: TorNetwork) {
    super();
    this.#net = net;
  }
  override createConnection(options: ClientRequestArgs, cb?: (err: Error | null, stream: Duplex) => void): undefined {
    const t = this.#net.tor;
    if (!t) {
      cb?.(new TorDownError('tor is not running'), undefined as unknown as Duplex);
      return undefined;
    }
    if (!this.#inner || this.#inner.socksPort !== t.socksPort) this.#inner = new TorSocksAgent({ socksPort: t.socksPort });
    return (this.#inner.createConnection as (o: ClientRequestArgs, c?: typeof cb) => undefined)(options, cb);
  }
}

const say = (text: string) => void process.stdout.write(text);

/** Tor bootstrap progress on stdout: one updating line on a TTY, a line per 10 % otherwise. */
function progressPrinter(net: PeerNetwork): () => void {
  let last = -1;
  const tty = process.stdout.isTTY;
  const off = net.onStatus((s) => {
    if (s.mode !== 'tor') return;
    if (s.state === 'bootstrapping' || s.state === 'bootstrapped') {
      if (tty) {
        const width = 30;
        const filled = Math.round((s.bootstrap / 100) * width);
        say(`\rTor: [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(s.bootstrap).padStart(3)}%`);
        if (s.bootstrap >= 100) say('\n');
      } else if (Math.floor(s.bootstrap / 10) > Math.floor(last / 10) || s.bootstrap === 100) {
        say(`Tor: bootstrapped ${s.bootstrap}%\n`);
      }
      last = s.bootstrap;
    } else if (s.state === 'publishing') say('Tor: publishing your onion service…\n');
    else if (s.state === 'restarting') say('Tor: exited; restarting it…\n');
    else if (s.state === 'online' && (s.generation ?? 0) > 1) say('Tor: back online, onion re-published\n');
  });
  return off;
}

export function registerStartCommand(cli: Argv<GlobalArgs>): void {
  cli.command(
    'start',
    'run the node: own Tor, publish your onion, send and receive',
    (y) => y
      .option('passphrase-file', { type: 'string', describe: 'read the passphrase from this file (else $ONIONPOST_PASSPHRASE, else a prompt)' })
      .option('tor-network', { type: 'string', describe: 'join the private Tor network in this directory (see `onionpost testnet up`)' })
      .option('tor-path', { type: 'string', describe: 'the tor binary (default: tor on PATH, /usr/sbin/tor)' })
      .option('hidden', { type: 'boolean', default: false, describe: 'do not publish the onion your identity names: contacts are told another one inside your sessions, strangers reach you through your mailbox providers' })
      .option('loopback', { type: 'string', describe: 'run WITHOUT Tor: reach nodes on this machine through this shared directory' })
      .option('api-port', { type: 'number', default: 0, describe: 'local API port on 127.0.0.1 (0: any free port)' })
      .option('network', { type: 'string', describe: 'TRON registry network: mainnet, nile, shasta or dev' })
      .option('full-host', { type: 'string', describe: 'TRON node URL (default: the network\'s)' })
      .option('registry', { type: 'string', describe: 'registry contract address (default: the recorded deployment)' })
      .option('directory', { type: 'string', describe: 'the provider directory the API and web UI list (and, as a provider, whose listing of this node sets its price); default: the recorded deployment' })
      .option('bootstrap-timeout', { type: 'number', default: 120, describe: 'seconds Tor may take to bootstrap' })
      .option('log-file', { type: 'string', describe: 'append the log (JSON lines) to this file instead of stderr' })
      .option('bridge', { type: 'boolean', default: true, describe: 'the mail bridge: SMTP and IMAP on 127.0.0.1 for mail clients (--no-bridge: off)' })
      .option('smtp-port', { type: 'number', default: BRIDGE_DEFAULT_PORTS.smtp, describe: 'mail bridge SMTP port on 127.0.0.1 (0: any free port)' })
      .option('imap-port', { type: 'number', default: BRIDGE_DEFAULT_PORTS.imap, describe: 'mail bridge IMAP port on 127.0.0.1 (0: any free port)' })
      .option('provide-mailbox', { type: 'boolean', default: false, describe: 'also be a mailbox provider: hold mail for other users while they are offline' })
      .option('provider-users', { type: 'number', default: DEFAULT_PROVIDER_LIMITS.maxUsers, describe: 'as a provider: users to hold mail for at most' })
      .option('provider-quota-mb', { type: 'number', default: DEFAULT_PROVIDER_LIMITS.quotaBytes / 2 ** 20, describe: 'as a provider: MB held per user at most' })
      .option('provider-retention-days', { type: 'number', default: DEFAULT_PROVIDER_LIMITS.retentionMs / 86_400_000, describe: 'as a provider: days mail is held before it is dropped unfetched' }),
    async (a) => {
      await cryptoReady();
      const paths = dataPaths(a.dataDir);
      // Before the passphrase prompt: asking for the passphrase of an identity that is not there helps no one.
      if (!existsSync(paths.keyFile)) {
        throw new CliError('KEYFILE_MISSING', `no identity in ${a.dataDir} yet: create one first with \`${cliName()} init${a.dataDir === defaultDataDir() ? '' : ` --data-dir ${a.dataDir}`}\`, then start the node`);
      }
      const passphrase = await readPassphrase({ passphraseFile: a.passphraseFile });
      const identity = await openKeyFile(paths.keyFile, passphrase);
      ensurePrivateDir(a.dataDir);
      const token = ensureApiToken(paths.apiToken);
      // A secret of its own, so a mail client's saved password never opens the API.
      const bridgePassword = a.bridge ? ensureApiToken(paths.bridgePassword) : null;
      const logger: Logger = createLogger({ level: a.logLevel as 'info', destination: await logDestination(a.logFile ? { file: a.logFile } : {}) });
      // Hidden: the onion we publish has a key of its own (kept beside the identity, 0600).
      const directSeed = a.hidden ? fromHex(ensureApiToken(paths.directKey)) : null;
      const directOnion = directSeed ? onionOfSeed(directSeed) : undefined;
      const network: PeerNetwork = a.loopback
        ? loopbackNetwork(a.loopback)
        : torNetwork({
            dataDir: a.dataDir, keyBlob: () => onionKeyBlob(directSeed ?? identity.seed), logger, bootstrapTimeoutMs: a.bootstrapTimeout * 1000,
            ...(a.torPath ? { torPath: a.torPath } : {}),
            ...(a.torNetwork ? { testNetwork: await readTestNetwork(a.torNetwork) } : {}),
          });
      const stopProgress = progressPrinter(network);
      // Lookups on a public network go through our own tor; the local dev chain is on loopback.
      const via = (fullHost: string) => (!/^https?:\/\/(127\.|localhost|\[::1\])/.test(fullHost) && 'tor' in network ? { agent: new CurrentTorAgent(network as TorNetwork) } : {});
      const target = registryTarget(a, false);
      let registry: IdentityRegistry | undefined;
      if (target) {
        registry = createTronRegistry({ fullHost: target.fullHost, contractAddress: target.contractAddress, logger: logger.child({ layer: 'registry' }), ...via(target.fullHost) });
      }
      // The API's providers.* read the directory; a provider also reads its own listing (its price)
      // and its subscribers' payments there. A network without a deployed directory has none.
      let directory: ProviderDirectory | undefined;
      if (a.network || a.fullHost || a.directory) {
        let t: ReturnType<typeof directoryTarget> | undefined;
        try {
          t = directoryTarget(a);
        } catch (err) {
          if (a.directory || !(err instanceof CliError && err.code === 'NO_DEPLOYMENT')) throw err;
        }
        if (t) directory = createProviderDirectory({ fullHost: t.fullHost, contractAddress: t.contractAddress, logger: logger.child({ layer: 'directory' }), ...via(t.fullHost) });
      }
      const web = await loadWebHandler(logger.child({ layer: 'web' }));
      const d = a.dataDir;
      const dirArg = d === defaultDataDir() ? '' : ` --data-dir ${d}`;
      const cli = cliName();
      const node: OnionpostNode = new OnionpostNode({
        identity, dbPath: paths.db, network, logger, ...(directOnion ? { directOnion } : {}), ...(registry ? { registry } : {}), ...(directory ? { directory } : {}),
        api: {
          port: a.apiPort, token, ...(web ? { web } : {}),
          // Up before Tor has bootstrapped: the CLI and the web UI (with its progress bar) work at once.
          onListening: (url) => {
            writeFileSync(paths.apiEndpoint, JSON.stringify({ url, pid: process.pid }), { mode: 0o600 });
            say([
              `onionpost node starting`,
              `  address:  ${identity.onion}${directOnion ? ' (hidden: never published; strangers reach you through your mailbox providers)' : ''}`,
              ...(directOnion ? [`  direct:   ${directOnion} (published; only your contacts are told it)`] : []),
              ...(web ? [`  web UI:   ${node.loginLink()!.url}`, `            (sign-in link: one browser, once, within 2 minutes; \`${cli}${dirArg} ui\` prints a fresh one)`] : []),
              `  API:      ${url}  (for the CLI and scripts; token in ${paths.apiToken})`,
              `  use it:   ${cli}${dirArg} inbox | send <recipient> | status`,
              `Ctrl-C stops the node.`,
              '',
            ].join('\n'));
          },
        },
        ...(bridgePassword ? { bridge: { smtpPort: a.smtpPort, imapPort: a.imapPort, password: bridgePassword } } : {}),
        ...(a.provideMailbox ? {
          provider: {
            dbPath: paths.providerDb,
            limits: { maxUsers: a.providerUsers, quotaBytes: Math.round(a.providerQuotaMb * 2 ** 20), retentionMs: Math.round(a.providerRetentionDays * 86_400_000) },
            ...(directory ? { directory } : {}),
          },
        } : {}),
        // The name `register` recorded for this identity on this network, claimed to recipients (who verify it).
        ...(target ? { registryName: registeredName(paths.registration, target.network) } : {}),
        rotateKeysCommand: rotateCommand(cli, dirArg, target && registeredName(paths.registration, target.network) ? target.network : null, a.fullHost),
      });
      let stopping: Promise<void> | undefined;
      const stop = (why: string) => {
        stopping ??= (async () => {
          say(`\nStopping (${why})…\n`);
          stopProgress();
          rmSync(paths.apiEndpoint, { force: true });
          await node.close();
          registry?.close();
          directory?.close();
        })();
        return stopping;
      };
      process.once('SIGINT', () => void stop('SIGINT').then(() => process.exit(0)));
      process.once('SIGTERM', () => void stop('SIGTERM').then(() => process.exit(0)));
      try {
        await node.start();
      } catch (err) {
        stopProgress();
        rmSync(paths.apiEndpoint, { force: true });
        registry?.close();
        directory?.close();
        throw err;
      }
      say(`onionpost node running: ${a.loopback ? 'reachable through the loopback directory' : 'onion service published'}\n`);
      if (node.mailBridge) {
        const b = node.mailBridge;
        say(`  mail:     SMTP ${b.smtp.host}:${b.smtp.port}, IMAP ${b.imap.host}:${b.imap.port}, user ${b.user} (settings and password: ${cli}${dirArg} bridge)\n`);
      }
      const off = node.events.subscribe((ev) => {
        if (ev.type === 'tor.status' && ev.reachable === true) say('Your onion is reachable.\n');
        if (ev.type === 'message.received') say(`New ${String(ev.kind)} from ${String(ev.peerLabel ?? ev.from)}: ${String(ev.subject ?? '')}\n`);
        if (ev.type === 'contact.rotated') say(`${String(ev.alias)} moved to a new address (${String(ev.onion)}), vouched for by the key you pinned; messages to them follow.\n`);
        if (ev.type === 'contact.keyChange') say(`WARNING: ${String(ev.alias)}'s keys changed: ${String(ev.reason)}. Messages to them are held.\n`);
        if (ev.type === 'session.reset') say(`Session reset with ${String(ev.alias ?? ev.peer)}: their node did not know our session (a restored backup?); ${String(ev.messages)} queued message(s) encrypted again. Their keys did not change.\n`);
      });
      await new Promise<void>(() => {});
      off();
    },
  );
}
