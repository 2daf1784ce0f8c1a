/**
 * `onionpost start`: unlocks the identity, runs the node in the foreground until Ctrl-C, and writes
 * `api.json` so the other commands find it. Tor by default; `--loopback DIR` runs without Tor
 * (nodes on one machine find each other through DIR).
 */
import { randomBytes } from 'node:crypto';
import { Agent, type ClientRequestArgs } from 'node:http';
import type { Duplex } from 'node:stream';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { cryptoReady, ensurePrivateDir, onionKeyBlob, readKeyFile } from '../crypto/index.js';
import { createLogger, type Logger } from '../log.js';
import { OnionpostNode, loopbackNetwork, torNetwork, TorDownError, type PeerNetwork, type TorNetwork } from '../node/index.js';
import { createTronRegistry, type IdentityRegistry } from '../registry/index.js';
import { readTestNetwork, TorSocksAgent } from '../tor/index.js';
import type { GlobalArgs } from './common.js';
import { cliName, dataPaths, defaultDataDir } from './paths.js';
import { CliError, readPassphrase } from './prompt.js';
import { registryTarget } from './registry-config.js';
import { loadWebHandler } from './web.js';

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

/** Tor bootstrap progress on stderr: one updating line on a TTY, a line per 10 % otherwise. */
function progressPrinter(net: PeerNetwork): () => void {
  let last = -1;
  const tty = process.stderr.isTTY;
  const off = net.onStatus((s) => {
    if (s.mode !== 'tor') return;
    if (s.state === 'bootstrapping' || s.state === 'bootstrapped') {
      if (tty) {
        const width = 30;
        const filled = Math.round((s.bootstrap / 100) * width);
        process.stderr.write(`\rTor: [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(s.bootstrap).padStart(3)}%`);
        if (s.bootstrap >= 100) process.stderr.write('\n');
      } else if (Math.floor(s.bootstrap / 10) > Math.floor(last / 10) || s.bootstrap === 100) {
        process.stderr.write(`Tor: bootstrapped ${s.bootstrap}%\n`);
      }
      last = s.bootstrap;
    } else if (s.state === 'publishing') process.stderr.write('Tor: publishing your onion service…\n');
    else if (s.state === 'restarting') process.stderr.write('Tor: exited; restarting it…\n');
    else if (s.state === 'online' && (s.generation ?? 0) > 1) process.stderr.write('Tor: back online, onion re-published\n');
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
      .option('loopback', { type: 'string', describe: 'run WITHOUT Tor: reach nodes on this machine through this shared directory' })
      .option('api-port', { type: 'number', default: 0, describe: 'local API port on 127.0.0.1 (0: any free port)' })
      .option('network', { type: 'string', describe: 'TRON registry network: mainnet, nile, shasta or dev' })
      .option('full-host', { type: 'string', describe: 'TRON node URL (default: the network\'s)' })
      .option('registry', { type: 'string', describe: 'registry contract address (default: the recorded deployment)' })
      .option('bootstrap-timeout', { type: 'number', default: 120, describe: 'seconds Tor may take to bootstrap' }),
    async (a) => {
      await cryptoReady();
      const paths = dataPaths(a.dataDir);
      // Before the passphrase prompt: asking for the passphrase of an identity that is not there helps no one.
      if (!existsSync(paths.keyFile)) {
        throw new CliError('KEYFILE_MISSING', `no identity in ${a.dataDir} yet: create one first with \`${cliName()} init${a.dataDir === defaultDataDir() ? '' : ` --data-dir ${a.dataDir}`}\`, then start the node`);
      }
      const passphrase = await readPassphrase({ passphraseFile: a.passphraseFile });
      const identity = readKeyFile(paths.keyFile, passphrase);
      ensurePrivateDir(a.dataDir);
      const token = ensureApiToken(paths.apiToken);
      const logger: Logger = createLogger({ level: a.logLevel as 'info', pretty: process.stderr.isTTY });
      const network: PeerNetwork = a.loopback
        ? loopbackNetwork(a.loopback)
        : torNetwork({
            dataDir: a.dataDir, keyBlob: () => onionKeyBlob(identity.seed), logger, bootstrapTimeoutMs: a.bootstrapTimeout * 1000,
            ...(a.torPath ? { torPath: a.torPath } : {}),
            ...(a.torNetwork ? { testNetwork: await readTestNetwork(a.torNetwork) } : {}),
          });
      const stopProgress = progressPrinter(network);
      const target = registryTarget(a, false);
      let registry: IdentityRegistry | undefined;
      if (target) {
        // Lookups on a public network go through our own tor; the local dev chain is on loopback.
        const local = /^https?:\/\/(127\.|localhost|\[::1\])/.test(target.fullHost);
        registry = createTronRegistry({
          fullHost: target.fullHost, contractAddress: target.contractAddress, logger: logger.child({ layer: 'registry' }),
          ...(!local && 'tor' in network ? { agent: new CurrentTorAgent(network as TorNetwork) } : {}),
        });
      }
      const web = await loadWebHandler(logger.child({ layer: 'web' }));
      const node = new OnionpostNode({
        identity, dbPath: paths.db, network, logger, ...(registry ? { registry } : {}),
        api: { port: a.apiPort, token, ...(web ? { web } : {}) },
      });
      let stopping: Promise<void> | undefined;
      const stop = (why: string) => {
        stopping ??= (async () => {
          process.stderr.write(`\nStopping (${why})…\n`);
          stopProgress();
          rmSync(paths.apiEndpoint, { force: true });
          await node.close();
          registry?.close();
        })();
        return stopping;
      };
      process.once('SIGINT', () => void stop('SIGINT').then(() => process.exit(0)));
      process.once('SIGTERM', () => void stop('SIGTERM').then(() => process.exit(0)));
      try {
        await node.start();
      } catch (err) {
        stopProgress();
        registry?.close();
        throw err;
      }
      writeFileSync(paths.apiEndpoint, JSON.stringify({ url: node.apiUrl, pid: process.pid }), { mode: 0o600 });
      const d = a.dataDir;
      process.stderr.write([
        `onionpost node running`,
        `  address:  ${identity.onion}`,
        `  API:      ${node.apiUrl}  (token in ${paths.apiToken})`,
        `  web UI:   ${node.apiUrl}/login?token=${token}`,
        `  use it:   onionpost --data-dir ${d} inbox | send <recipient> | status`,
        `Ctrl-C stops the node.`,
        '',
      ].join('\n'));
      const off = node.events.subscribe((ev) => {
        if (ev.type === 'tor.status' && ev.reachable === true) process.stderr.write('Your onion is reachable.\n');
        if (ev.type === 'message.received') process.stderr.write(`New ${String(ev.kind)} from ${String(ev.peerLabel ?? ev.from)}: ${String(ev.subject ?? '')}\n`);
        if (ev.type === 'contact.keyChange') process.stderr.write(`WARNING: ${String(ev.alias)}'s keys changed: ${String(ev.reason)}. Messages to them are held.\n`);
      });
      await new Promise<void>(() => {});
      off();
    },
  );
}
