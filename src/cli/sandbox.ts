/**
 * `onionpost sandbox` (what `npm start` runs): the whole system on one machine, offline.
 *
 *   1. a private Tor network on 127.0.0.1 (3 authorities + 2 relays)
 *   2. a local TRON dev chain with the IdentityRegistry deployed
 *   3. three nodes, alice, bob and carol, each with its own data dir, its own tor, its onion
 *      published, its name registered, its local API and web UI
 *   4. the provider market: carol also runs a mailbox provider, listed in the provider directory at
 *      1 TRX per 30 days; bob pays for his subscription on the dev chain and subscribes at carol's
 *      onion through his own tor (carol checks the payment on chain). This comes before any mail, so
 *      bob's signed bundle lists carol when alice's session with him begins.
 *   5. demo mail between them, addressed by registered name
 *   6. offline delivery: bob's node (and its tor) stops; alice writes to him, and her node, finding
 *      him offline, leaves the message at carol ("in mailbox"); bob's node starts again on the same
 *      data dir, fetches it from carol, commits and acknowledges (carol deletes it), and sends
 *      alice's node his receipt ("delivered")
 *
 * It prints each node's onion, a web UI sign-in link (single use, 2 minutes) and CLI usage, then runs until Ctrl-C; `--once`
 * prints a summary and exits 0 only if every demo message was delivered, bob's subscription went
 * through and the offline message reached him through carol. Everything it starts it stops: no tor
 * is left behind.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { API_ENDPOINT_FILE } from '../api/index.js';
import { startDevChain, type DevChain } from '../chain/index.js';
import { deployAll, writeDeployment } from '../contract/index.js';
import {
  KDF_FAST, cryptoReady, ensurePrivateDir, generateIdentity, onionKeyBlob, readKeyFile, subscriberTag, subscriberTagKey, writeKeyFile, type Identity,
} from '../crypto/index.js';
import { toHex } from '../bytes.js';
import { describeError } from '../errors.js';
import { createLogger, logDestination } from '../log.js';
import { OnionpostNode, torNetwork } from '../node/index.js';
import { createProviderDirectory, createTronRegistry, type IdentityRegistry, type ProviderDirectory } from '../registry/index.js';
import { TronWeb } from 'tronweb';
import { readTestNetwork, upTestNetwork, type TestNetworkInfo } from '../tor/index.js';
import type { GlobalArgs } from './common.js';
import { cliName, dataPaths } from './paths.js';
import { removeSandboxMarker, writeSandboxMarker } from './registry-config.js';
import { ensureApiToken } from './start.js';
import { loadWebHandler } from './web.js';
import { bridgeSettingsText } from './bridge-command.js';
import { table } from './format.js';

const NAMES = ['alice', 'bob', 'carol'] as const;
const PASSPHRASE = 'sandbox';
/** The member that also runs a mailbox provider, and its terms in the directory. */
const PROVIDER = 'carol';
const PROVIDER_TERMS = { retentionDays: 30, quotaMB: 64, token: null, price: 1_000_000n } as const;
/** The directory's minimum stake on the dev chain (deployAll below), sun. */
const PROVIDER_STAKE_SUN = 100_000_000n;

interface Member {
  name: string;
  identity: Identity;
  /** Replaced when the member's node is stopped and started again (the offline demo). */
  node: OnionpostNode;
  registry: IdentityRegistry;
  directory: ProviderDirectory;
  dataDir: string;
}

/** What the provider-market part of the demo did (printed, and in --json). */
interface MarketDemo {
  provider: string;
  listed: boolean;
  pricePer30Days: string;
  paidBy: string;
  paidUntil: number;
  subscribed: boolean;
  retentionDays?: number;
  quotaMB?: number;
  error?: string;
}

/**
 * carol lists her provider in the directory (unless a kept --dir already did), bob pays for one
 * period of his subscription from his TRON account, then his node subscribes at carol's onion
 * through its own tor (mailboxes.add): carol answers with her signed terms only because the
 * payment is on chain.
 */
async function providerMarketDemo(provider: Member, user: Member, signal: AbortSignal): Promise<MarketDemo> {
  const out: MarketDemo = { provider: provider.name, listed: false, pricePer30Days: '1 TRX', paidBy: user.name, paidUntil: 0, subscribed: false };
  try {
    const owner = provider.directory.address!;
    const existing = await provider.directory.get(owner, { signal });
    if (!existing) await provider.directory.register(provider.identity, { ...PROVIDER_TERMS }, PROVIDER_STAKE_SUN, { signal });
    out.listed = true;
    const tag = subscriberTag(subscriberTagKey(user.identity), provider.identity.identityKey);
    const paid = await user.directory.pay(owner, tag, 1, { signal, maxPrice: PROVIDER_TERMS.price });
    out.paidUntil = paid.paidUntil;
    // What `onionpost mailboxes add` does: bob's node subscribes (signed, with this same tag),
    // verifies carol's signed terms and remembers her.
    const { terms } = await user.node.mailboxes.add(provider.identity.onion);
    out.subscribed = true;
    out.retentionDays = Math.round(terms.retentionMs / 86_400_000);
    out.quotaMB = Math.round(terms.quotaBytes / 2 ** 20);
  } catch (err) {
    out.error = describeError(err);
  }
  return out;
}

/** What the offline-delivery part of the demo did (printed, and in --json). */
interface OfflineDemo {
  from: string;
  to: string;
  /** The message sent while `to` was offline. */
  id?: string;
  /** The providers (onions) holding it while `to` was offline, as the sender's outbox showed it ("in_mailbox"), and whose they are. */
  mailboxes: string[];
  heldBy: string[];
  /** `to`'s node, started again, fetched it from its provider and committed it. */
  fetched: boolean;
  /** Once `to` acknowledged it, the providers that held it hold nothing any more (they deleted it). */
  deleted: boolean;
  /** The sender got `to`'s own receipt. */
  delivered: boolean;
  /** Milliseconds from the send: in mailbox, `to` started again, fetched, delivered. */
  ms: { inMailbox?: number; restarted?: number; fetched?: number; delivered?: number };
  error?: string;
}

/** Polls `probe` every 250 ms until it returns a value (not null/undefined/false); throws when `signal` fires. */
async function until<T>(what: string, signal: AbortSignal, probe: () => T | null | undefined | false | Promise<T | null | undefined | false>): Promise<T> {
  for (;;) {
    const v = await probe();
    if (v !== null && v !== undefined && v !== false) return v;
    if (signal.aborted) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Offline delivery through a mailbox provider: the recipient (bob, subscribed at carol before his
 * session with the sender began, so the sender knows his provider) stops; the sender's message to
 * him is left at carol ("in_mailbox"); bob's node starts again on the same data dir, fetches it from
 * carol, commits and acknowledges, and pushes his own receipt to the sender's node ("delivered").
 */
async function offlineDeliveryDemo(
  sender: Member, recipient: Member, members: readonly Member[], restart: () => Promise<OnionpostNode>, signal: AbortSignal,
): Promise<OfflineDemo> {
  const out: OfflineDemo = { from: sender.name, to: recipient.name, mailboxes: [], heldBy: [], fetched: false, deleted: false, delivered: false, ms: {} };
  try {
    // Without a session that told the sender the recipient's providers, the message would just wait
    // in the sender's outbox: say so now rather than after the timeout.
    const known = sender.node.store.deposits.peerMailboxes(toHex(recipient.identity.identityKey));
    if (known.length === 0) throw new Error(`${sender.name} knows no mailbox provider of ${recipient.name}'s (no subscription, or no session yet)`);
    rmSync(join(recipient.dataDir, API_ENDPOINT_FILE), { force: true });
    await recipient.node.close();
    say(`${recipient.name} is offline (his node and its tor stopped); ${sender.name} writes to him…`);
    const t = Date.now();
    const sent = await sender.node.send({ to: recipient.name, subject: 'While you were away', body: 'Your provider kept this for you. – Alice', kind: 'mail' });
    const id = sent.id;
    out.id = id;
    // What `outbox --json` and the web UI show: the message is held at his providers.
    const shown = await until(`${sender.name}'s message held at ${recipient.name}'s provider`, signal, () => {
      const v = sender.node.handlers['messages.get']!({ id }) as { state: string; mailboxes?: string[] };
      return v.state === 'in_mailbox' ? v : null;
    });
    out.ms.inMailbox = Date.now() - t;
    out.mailboxes = shown.mailboxes ?? [];
    out.heldBy = out.mailboxes.map((onion) => members.find((m) => m.identity.onion === onion)?.name ?? onion);
    say(`held at ${out.heldBy.join(', ')}; ${recipient.name} comes back online…`);
    recipient.node = await restart();
    out.ms.restarted = Date.now() - t;
    // The node fetches from its providers as it starts; should that round come too early for its
    // fresh tor, fetch again (what it would do on its own every 5 minutes).
    const node = recipient.node;
    await until(`${recipient.name} fetching the message`, signal, async () => {
      if (node.store.getMessage(id)) return true;
      await node.fetchMailboxes();
      return node.store.getMessage(id) !== null;
    });
    out.fetched = true;
    out.ms.fetched = Date.now() - t;
    const holders = members.filter((m) => out.mailboxes.includes(m.identity.onion));
    await until(`${out.heldBy.join(', ')} deleting it after ${recipient.name}'s acknowledgement`, signal, () => holders.every((m) => m.node.status().provider?.held === 0));
    out.deleted = holders.length > 0;
    say(`${recipient.name} fetched it from his provider; his node sends ${sender.name}'s node his receipt…`);
    // "delivered" only on the recipient's own receipt: his node pushes it to the sender's node
    // right after the fetch (no retry of the direct path needed).
    await until(`${recipient.name}'s receipt`, signal, () => sender.node.store.getMessage(id)?.state === 'delivered');
    out.delivered = true;
    out.ms.delivered = Date.now() - t;
  } catch (err) {
    out.error = describeError(err);
  }
  return out;
}

/** The offline demo in plain words, for the summary. */
function offlineLines(o: OfflineDemo): string[] {
  const secs = (ms?: number) => `${((ms ?? 0) / 1000).toFixed(1)} s`;
  const lines = [`  ${o.to} went offline; ${o.from} wrote to him anyway.`];
  if (o.mailboxes.length > 0) lines.push(`  ${secs(o.ms.inMailbox)} later the message was "in mailbox": held for ${o.to} by ${o.heldBy.join(' and ')}, his mailbox provider.`);
  if (o.ms.restarted !== undefined) lines.push(`  ${o.to} came back online (${secs(o.ms.restarted)} after the send)${o.fetched ? `, fetched it from his provider at ${secs(o.ms.fetched)}` : ''}${o.deleted ? ' and acknowledged it: his provider deleted it' : ''}.`);
  if (o.delivered) lines.push(`  ${o.from} saw it delivered, on ${o.to}'s own receipt, at ${secs(o.ms.delivered)}.`);
  if (o.error) lines.push(`  FAILED: ${o.error}`);
  return lines;
}

/** A path as a POSIX shell word (quoted only when it has to be). */
function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

function say(line: string): void {
  process.stderr.write(`sandbox: ${line}\n`);
}

function loadOrCreateIdentity(dataDir: string): Identity {
  const { keyFile } = dataPaths(dataDir);
  if (existsSync(keyFile)) return readKeyFile(keyFile, PASSPHRASE);
  const id = generateIdentity();
  writeKeyFile(keyFile, id, PASSPHRASE, { strength: KDF_FAST });
  return id;
}

export function registerSandboxCommand(cli: Argv<GlobalArgs>): void {
  cli.command(
    'sandbox',
    'the whole system offline: private Tor network, dev chain, three nodes exchanging mail',
    (y) => y
      .option('dir', { type: 'string', describe: 'keep state here between runs (default: a temporary dir, removed at exit)' })
      .option('once', { type: 'boolean', default: false, describe: 'run the demo, print a summary, exit (0 only if all was delivered, offline mail included)' })
      .option('tor-network', { type: 'string', describe: 'join this running private Tor network (`testnet up`) instead of starting one; it is left running' }),
    async (a) => {
      await cryptoReady();
      const started = Date.now();
      const dir = a.dir ? resolve(a.dir) : mkdtempSync(join(tmpdir(), 'onionpost-sandbox-'));
      ensurePrivateDir(dir);
      const logger = createLogger({ level: a.logLevel === 'info' ? 'warn' : (a.logLevel as 'warn'), destination: await logDestination() });
      let testnet: { dir: string; info: TestNetworkInfo; down(): Promise<void> } | undefined;
      let chain: DevChain | undefined;
      const members: Member[] = [];
      let torndown: Promise<void> | undefined;
      const teardown = () => {
        torndown ??= (async () => {
          say('stopping…');
          removeSandboxMarker(process.pid);
          for (const m of members.reverse()) {
            rmSync(join(m.dataDir, API_ENDPOINT_FILE), { force: true });
            await m.node.close().catch((err) => say(`closing ${m.name}: ${describeError(err)}`));
            m.registry.close();
            m.directory.close();
          }
          await chain?.close();
          await testnet?.down();
          if (!a.dir) rmSync(dir, { recursive: true, force: true });
          say('stopped; no tor process left');
        })();
        return torndown;
      };
      process.once('SIGINT', () => void teardown().then(() => process.exit(130)));
      process.once('SIGTERM', () => void teardown().then(() => process.exit(143)));
      try {
        say(`state in ${dir}`);
        const t0 = Date.now();
        if (a.torNetwork) {
          say(`joining the private Tor network in ${resolve(a.torNetwork)}`);
          testnet = { dir: resolve(a.torNetwork), info: await readTestNetwork(a.torNetwork), down: async () => {} };
        } else {
          say('starting a private Tor network on 127.0.0.1 (about 30-40 s)…');
          testnet = await upTestNetwork({ dir: join(dir, 'testnet'), ownerPid: process.pid, log: (l) => say(`tor network: ${l}`) });
        }
        const torNetSeconds = (Date.now() - t0) / 1000;

        say('starting the TRON dev chain and deploying the registry…');
        const t1 = Date.now();
        chain = await startDevChain({ logger: createLogger({ level: 'warn' }) });
        const deployer = chain.accounts[0]!;
        const tronWeb = new TronWeb({ fullHost: chain.url, privateKey: deployer.privateKey });
        const all = await deployAll({
          tronWeb, minCommitmentAge: 1, maxCommitmentAge: 86_400, timeoutMs: 60_000, minStakeSun: 100_000_000, withdrawalDelaySeconds: 86_400, testToken: true,
        });
        const deployed = all.registry;
        const deployment = {
          address: deployed.address, txId: deployed.txId, deployedAt: new Date().toISOString(), fullHost: chain.url,
          directory: all.directory.address, ...(all.token ? { token: all.token.address } : {}),
        };
        writeDeployment('dev', deployment, join(dir, 'deployments.json'));
        // While we run, `onionpost … --network dev` on this machine means this chain (registry-config.ts).
        writeSandboxMarker({ pid: process.pid, dir, dev: deployment });
        const chainSeconds = (Date.now() - t1) / 1000;
        say(`registry at ${deployed.address}, provider directory at ${all.directory.address} on ${chain.url}`);

        const t2 = Date.now();
        say('starting alice, bob and carol, each with its own tor…');
        const web = await loadWebHandler(logger.child({ layer: 'web' }));
        // A member's node on its data dir: at first, and again when bob comes back (offline demo).
        const startNode = async (name: string, identity: Identity, directory: ProviderDirectory, registry: IdentityRegistry): Promise<OnionpostNode> => {
          const dataDir = join(dir, name);
          const token = ensureApiToken(dataPaths(dataDir).apiToken);
          const bridgePassword = ensureApiToken(dataPaths(dataDir).bridgePassword);
          const network = torNetwork({ dataDir, keyBlob: () => onionKeyBlob(identity.seed), testNetwork: testnet!.info, logger: logger.child({ node: name }), bootstrapTimeoutMs: 90_000 });
          network.onStatus((s) => {
            if (s.state === 'bootstrapping' && s.bootstrap % 25 === 0) say(`${name}: tor ${s.bootstrap}%`);
            if (s.state === 'online') say(`${name}: onion published`);
          });
          const node = new OnionpostNode({
            identity, dbPath: dataPaths(dataDir).db, network, registry, directory, logger: logger.child({ node: name }),
            api: { token, ...(web ? { web } : {}) }, selfCheckTimeoutMs: 120_000,
            // Any free ports: three nodes share this machine.
            bridge: { smtpPort: 0, imapPort: 0, password: bridgePassword },
            outbox: { policy: { fastBaseMs: 1_000, fastMaxMs: 10_000 } }, registryName: name,
            // The terms carol's provider serves are the ones she lists in the directory, and it
            // serves only subscriptions paid there.
            ...(name === PROVIDER ? {
              provider: { dbPath: join(dataDir, 'provider.db'), limits: { retentionMs: PROVIDER_TERMS.retentionDays * 86_400_000, quotaBytes: PROVIDER_TERMS.quotaMB * 2 ** 20 }, directory },
            } : {}),
          });
          await node.start();
          writeFileSync(join(dataDir, API_ENDPOINT_FILE), JSON.stringify({ url: node.apiUrl, pid: process.pid }), { mode: 0o600 });
          return node;
        };
        await Promise.all(NAMES.map(async (name, i) => {
          const dataDir = join(dir, name);
          ensurePrivateDir(dataDir);
          const identity = loadOrCreateIdentity(dataDir);
          const account = chain!.accounts[i + 1]!;
          const registry = createTronRegistry({ fullHost: chain!.url, contractAddress: deployed.address, tronPrivateKey: account.privateKey, logger: logger.child({ layer: 'registry', node: name }) });
          const directory = createProviderDirectory({ fullHost: chain!.url, contractAddress: all.directory.address, tronPrivateKey: account.privateKey, logger: logger.child({ layer: 'directory', node: name }) });
          const node = await startNode(name, identity, directory, registry);
          members.push({ name, identity, node, registry, directory, dataDir });
        }));
        members.sort((x, y) => NAMES.indexOf(x.name as never) - NAMES.indexOf(y.name as never));

        say('registering the names alice, bob and carol in the registry…');
        for (const m of members) {
          const existing = await m.registry.resolveName(m.name, { fresh: true });
          if (!existing) await m.registry.register(m.identity, m.name);
        }
        for (const m of members) {
          const deadline = Date.now() + 180_000;
          while (!m.node.reachable && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
          say(`${m.name}: ${m.node.reachable ? 'reachable' : 'NOT reachable yet'} at ${m.identity.onion}`);
        }
        const nodesSeconds = (Date.now() - t2) / 1000;

        const [alice, bob, carol] = members as [Member, Member, Member];
        // Before any mail: alice's session with bob, agreed on the first demo message, learns from his
        // signed bundle that carol keeps his mail, which the offline demo below needs.
        say(`${PROVIDER} lists her mailbox provider in the directory; bob pays for his subscription and subscribes…`);
        const market = await providerMarketDemo(carol, bob, AbortSignal.timeout(240_000));
        const marketOk = market.listed && market.subscribed;
        const demo: [Member, string, string, string, 'mail' | 'chat'][] = [
          [alice, 'bob', 'Lunch on Friday?', 'Hi Bob, shall we meet at noon? – Alice', 'mail'],
          [bob, 'carol', 'Fwd: lunch', 'Carol, Alice suggests Friday noon. Coming?', 'mail'],
          [carol, 'alice', 'Re: lunch', 'Count me in!', 'mail'],
          [alice, 'carol', '', 'see you there 👋', 'chat'],
        ];
        say(`sending ${demo.length} demo messages, addressed by registered name…`);
        const results = await Promise.all(demo.map(async ([from, to, subject, body, kind]) => {
          const t = Date.now();
          const r = await from.node.send({ to, subject, body, kind, wait: true, waitMs: 180_000 });
          return { from: from.name, to, state: r.state, ms: Date.now() - t, reason: r.reason };
        }));
        const delivered = results.filter((r) => r.state === 'delivered').length;

        const offline = await offlineDeliveryDemo(alice, bob, members, () => startNode(bob.name, bob.identity, bob.directory, bob.registry), AbortSignal.timeout(240_000));
        const offlineOk = offline.fetched && offline.deleted && offline.delivered && offline.mailboxes.includes(carol.identity.onion);


        const cli = cliName();
        const cliPrefix = (m: Member) => `${cli} --data-dir ${shellQuote(m.dataDir)}`;
        process.stdout.write([
          '',
          table(['NODE', 'ONION', 'WEB UI SIGN-IN LINK'], members.map((m) => [m.name, m.identity.onion, m.node.loginLink()!.url])),
          `Each sign-in link works once, within 2 minutes; for a fresh one: ${cli} --data-dir <node dir> ui`,
          '',
          'Demo messages:',
          table(['FROM', 'TO', 'STATE', 'SEND→RECEIPT'], results.map((r) => [r.from, r.to, r.state + (r.reason ? ` (${r.reason})` : ''), `${r.ms} ms`])),
          '',
          'Provider market:',
          marketOk
            ? `  ${market.provider} is listed in the provider directory (${market.pricePer30Days} per 30 days); ${market.paidBy} paid until ${new Date(market.paidUntil).toISOString()} and subscribed: ${market.provider} keeps his mail ${market.retentionDays} days, up to ${market.quotaMB} MB`
            : `  FAILED: ${market.error ?? 'not subscribed'} (listed: ${market.listed}, paid until: ${market.paidUntil ? new Date(market.paidUntil).toISOString() : 'never'})`,
          '',
          'Offline delivery:',
          ...offlineLines(offline),
          '',
          `Summary: ${demo.length} sent, ${delivered} delivered. Setup: Tor network ${torNetSeconds.toFixed(1)} s, chain + registry ${chainSeconds.toFixed(1)} s, nodes online + names registered ${nodesSeconds.toFixed(1)} s; total ${((Date.now() - started) / 1000).toFixed(1)} s.`,
          '',
          ...(a.once ? [] : [
            'Try it (in another terminal):',
            `  ${cliPrefix(bob)} inbox`,
            `  ${cliPrefix(bob)} send alice --subject "hello" --body "from the CLI" --wait`,
            `  ${cliPrefix(alice)} status`,
            `  ${cliPrefix(alice)} outbox    # the last message reached bob through carol's mailbox while he was offline`,
            `  ${cliPrefix(bob)} mailboxes list    # bob's provider, carol, and when he last fetched from it`,
            `  ${cli} lookup alice --network dev --json`,
            `  ${cli} providers list --network dev    # the mailbox providers in the directory`,
            `  ${cliPrefix(alice)} ui    # a fresh web UI sign-in link for alice`,
            `  ${cli} start --tor-network ${shellQuote(testnet.dir)} --data-dir ${shellQuote(join(dir, 'you'))}    # your own node in this network (after ${cli} init --data-dir ${shellQuote(join(dir, 'you'))})`,
            'Open a sign-in link above in a browser on this machine. Ctrl-C stops everything.',
            '',
            bridgeSettingsText({ smtp: alice.node.mailBridge!.smtp, imap: alice.node.mailBridge!.imap, user: alice.node.mailBridge!.user, address: alice.node.mailBridge!.user, password: readFileSync(dataPaths(alice.dataDir).bridgePassword, 'utf8').trim() }, 'alice'),
            `  (the same as JSON: ${cliPrefix(alice)} bridge --json; bob is bob@onionpost.onion, carol carol@onionpost.onion)`,
            '',
          ]),
        ].join('\n'));
        if (a.once) {
          if (a.json) process.stdout.write(`${JSON.stringify({ sent: demo.length, delivered, results, market, offline })}\n`);
          await teardown();
          if (delivered !== demo.length || !marketOk || !offlineOk) process.exitCode = 1;
          return;
        }
        await new Promise<void>(() => {});
      } catch (err) {
        await teardown();
        throw err;
      }
    },
  );
}
