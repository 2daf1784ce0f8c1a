/**
 * `onionpost providers …`: the mailbox-provider directory on TRON. Finding providers (list, show),
 * paying one for this identity's subscription (pay), vouching for some (sign-trust-list), and
 * running one (register, leave, withdraw).
 * Each takes --network (mainnet, nile, shasta, dev) and --json. `show` adds what this user's
 * running node measured of the provider (deposits, fetches, mail delivered or lost), when one runs.
 * Choosing which providers a node uses (`use`, `drop`) finds the provider in the directory and asks
 * the running node to subscribe there or to drop it (the node's mailboxes.add / mailboxes.remove;
 * `onionpost mailboxes` does the same by onion, without the directory).
 * With a node running, `list` also says which listings pass its directory policy (`mailboxes policy`).
 *
 * What a payment links on chain: the paying TRON account to that provider, the amount and the
 * paid-until date, under a subscriber tag that only this identity and the provider can tie to the
 * identity's onion (crypto/provider.ts). Pay from an account that is not otherwise linked to you
 * if that link matters.
 */
import type { Argv } from 'yargs';
import { cryptoReady, readKeyFile, subscriberTag, subscriberTagKey, parseOnionAddress } from '../crypto/index.js';
import { createProviderDirectory, formatAmount, parseTronAddress, priceWords, type ProviderDirectory, type ProviderListing, type ProviderTerms } from '../registry/index.js';
import { ApiError, RemoteError, connectToNode } from '../api/index.js';
import { signTrustList } from '../provider/index.js';
import { parseAmount } from './amount.js';
import { print, type GlobalArgs } from './common.js';
import { ADD_TIMEOUT_MS, countWords, measuredBy, scoreWords, termsWords, type MailboxView } from './mailbox-commands.js';
import { dataPaths } from './paths.js';
import { CliError, readPassphrase } from './prompt.js';
import { tronKey } from './tron-key.js';
import { directoryTarget, keyOptions, type DirectoryArgs, type KeyArgs } from './registry-config.js';

function directoryOptions<T>(y: Argv<T>) {
  return y
    .option('network', { type: 'string', default: 'dev', describe: 'TRON network: mainnet, nile, shasta or dev' })
    .option('full-host', { type: 'string', describe: "TRON node URL (default: the network's)" })
    .option('directory', { type: 'string', describe: 'provider directory contract (default: the recorded deployment)' });
}


/** JSON view: amounts as decimal strings (bigints do not survive JSON). */
function listingView(p: ProviderListing) {
  return {
    owner: p.owner, onion: p.onion, identityKey: Buffer.from(p.identityKey).toString('hex'), status: p.status,
    terms: { retentionDays: p.terms.retentionDays, quotaMB: p.terms.quotaMB, token: p.terms.token, pricePer30Days: p.terms.price.toString() },
    stakeSun: p.stakeSun.toString(), withdrawableAt: p.withdrawableAt, version: p.version,
  };
}

function listingText(p: ProviderListing, judged?: Judged): string {
  const price = priceWords(p.terms.price, p.terms.token);
  return [
    `${p.onion}${p.status === 'leaving' ? '  (leaving)' : ''}`,
    `  owner ${p.owner}; stake ${formatAmount(p.stakeSun, null)}; keeps mail ${p.terms.retentionDays} days; ${p.terms.quotaMB} MB per user; ${price}`,
    ...(judged ? [judged.eligible ? '  eligible under your policy' : `  not eligible: ${judged.reason}`] : []),
  ].join('\n');
}

interface Judged {
  eligible: boolean;
  reason: string | null;
}

/**
 * How the node running on `dataDir` judges the same page of listings under its directory policy
 * (`mailboxes policy`), by onion; `problem` says why it could not. No node running, or one without
 * a directory: nothing to say.
 */
async function judgedBy(dataDir: string, q: { offset: number; limit: number; includeLeaving: boolean }): Promise<{ byOnion: Map<string, Judged>; problem: string | null }> {
  const none = { byOnion: new Map<string, Judged>(), problem: null };
  let client;
  try {
    client = connectToNode(dataDir);
  } catch (err) {
    if (err instanceof ApiError && err.code === 'NODE_NOT_RUNNING') return none;
    throw err;
  }
  try {
    const page = await client.call<{ providers: ({ onion: string } & Judged)[] }>('providers.list', q);
    return { byOnion: new Map(page.providers.map((p) => [p.onion, { eligible: p.eligible, reason: p.reason }])), problem: null };
  } catch (err) {
    if (err instanceof RemoteError && err.code === 'NO_DIRECTORY') return none;
    // The listing itself came from the chain; the node's view is an extra.
    return { ...none, problem: (err as Error).message };
  }
}

async function withDirectory<T>(a: DirectoryArgs & KeyArgs, write: boolean, fn: (d: ProviderDirectory, t: ReturnType<typeof directoryTarget>) => Promise<T>): Promise<T> {
  const t = directoryTarget(a);
  const d = createProviderDirectory({ fullHost: t.fullHost, contractAddress: t.contractAddress, ...(write ? { tronPrivateKey: tronKey(a) } : {}) });
  try {
    return await fn(d, t);
  } finally {
    d.close();
  }
}

/** A provider named by its TRON owner address or its onion (looked up by identity key). */
async function findProvider(d: ProviderDirectory, who: string): Promise<ProviderListing> {
  const owner = parseTronAddress(who);
  let p: ProviderListing | null;
  if (owner) p = await d.get(owner.base58);
  else {
    let key: Uint8Array;
    try {
      key = parseOnionAddress(who).identityKey;
    } catch {
      throw new CliError('USAGE', `"${who}" is neither a TRON address nor an onion address`);
    }
    p = await d.byIdentity(key);
  }
  if (!p) throw new CliError('NOT_FOUND', `${who} is not listed in the provider directory`);
  return p;
}

export function registerProviderCommands(cli: Argv<GlobalArgs>): void {
  cli.command('providers', 'mailbox providers in the TRON directory: find, pay, or run one', (y) => y
    .command('list', 'listed providers with their terms and stake', (yy) => directoryOptions(yy)
      .option('offset', { type: 'number', default: 0 })
      .option('limit', { type: 'number', default: 100 })
      .option('all', { type: 'boolean', default: false, describe: 'also providers that are leaving' }), async (a) => {
      await cryptoReady();
      const page = await withDirectory(a, false, (d) => d.list({ offset: a.offset, limit: a.limit, includeLeaving: a.all }));
      // With a node running: which listings pass its directory policy (`mailboxes policy`), and why not.
      const judged = await judgedBy(a.dataDir, { offset: a.offset, limit: a.limit, includeLeaving: a.all });
      const j = (p: ProviderListing) => judged.byOnion.get(p.onion);
      print(a, { total: page.total, providers: page.providers.map((p) => ({ ...listingView(p), ...j(p) })), rejected: page.rejected }, () => [
        page.providers.length ? page.providers.map((p) => listingText(p, j(p))).join('\n') : 'No providers listed.',
        ...page.rejected.map((r) => `(ignored ${r.owner}: its listing is not bound to its onion)`),
        ...(judged.problem ? [`(your node could not judge these listings: ${judged.problem})`] : []),
      ].join('\n'));
    })
    .command('show <provider>', 'one provider (TRON owner address or onion); with --mine, what this identity has paid it', (yy) => directoryOptions(yy)
      .positional('provider', { type: 'string', demandOption: true })
      .option('mine', { type: 'boolean', default: false, describe: "also this identity's paid-until date (needs the passphrase)" })
      .option('passphrase-file', { type: 'string' }), async (a) => {
      await cryptoReady();
      await withDirectory(a, false, async (d) => {
        const p = await findProvider(d, a.provider);
        // The paid-until date is recorded under a tag only the identity's secret derives.
        let paidUntil: number | null = null;
        if (a.mine) {
          const id = readKeyFile(dataPaths(a.dataDir).keyFile, await readPassphrase({ passphraseFile: a.passphraseFile }));
          paidUntil = await d.paidUntil(p.owner, subscriberTag(subscriberTagKey(id), p.identityKey));
        }
        // What this user's running node saw the provider do (null without a running node).
        const m = await measuredBy(a.dataDir, p.onion);
        const measured = m ? { score: m.score, proven: m.proven, belowThreshold: m.belowThreshold, counts: m.counts } : null;
        print(a, { ...listingView(p), paidUntil, measured }, () => `${listingText(p)}${a.mine ? `\n  ${paidUntil ? `you have paid until ${new Date(paidUntil).toISOString()}` : 'you have not paid this provider'}` : ''}`
          + (m ? `\n  measured by your node: ${scoreWords(m)} (${countWords(m.counts)})` : ''));
      });
    })
    .command('pay <provider>', "pay a provider for this identity's mailbox (whole 30-day periods, at its listed price)", (yy) => keyOptions(directoryOptions(yy))
      .positional('provider', { type: 'string', demandOption: true })
      .option('periods', { type: 'number', default: 1, describe: '30-day periods, 1..24' })
      .option('max-price', { type: 'string', describe: 'refuse if the price per 30 days is above this (TRX or token units)' })
      .option('passphrase-file', { type: 'string' }), async (a) => {
      await cryptoReady();
      const id = readKeyFile(dataPaths(a.dataDir).keyFile, await readPassphrase({ passphraseFile: a.passphraseFile }));
      await withDirectory(a, true, async (d) => {
        const p = await findProvider(d, a.provider);
        const tag = subscriberTag(subscriberTagKey(id), p.identityKey);
        const paid = await d.pay(p.owner, tag, a.periods, a.maxPrice !== undefined ? { maxPrice: parseAmount(a.maxPrice, '--max-price') } : {});
        print(a, { provider: p.onion, owner: p.owner, txId: paid.txId, amount: paid.amount.toString(), token: paid.token, paidUntil: paid.paidUntil, payer: d.address }, () =>
          `Paid ${formatAmount(paid.amount, paid.token)} to ${p.onion} from ${d.address}\n  paid until ${new Date(paid.paidUntil).toISOString()} (tx ${paid.txId})`);
      });
    })
    .command('use <provider>', 'have your running node subscribe at a listed provider (TRON owner address or onion; pay it first if it has a price)', (yy) => directoryOptions(yy)
      .positional('provider', { type: 'string', demandOption: true }), async (a) => {
      await cryptoReady();
      const p = await withDirectory(a, false, (d) => findProvider(d, a.provider));
      const m = await connectToNode(a.dataDir).call<MailboxView>('mailboxes.add', { onion: p.onion }, { timeoutMs: ADD_TIMEOUT_MS });
      print(a, { ...listingView(p), mailbox: m }, () => `Using ${p.onion} (${priceWords(p.terms.price, p.terms.token)}; stake ${formatAmount(p.stakeSun, null)}): it ${termsWords(m.terms)}`);
    })
    .command('drop <provider>', 'have your running node stop using a provider (TRON owner address or onion)', (yy) => directoryOptions(yy)
      .positional('provider', { type: 'string', demandOption: true }), async (a) => {
      await cryptoReady();
      // An onion needs no directory; an owner address is looked up to find its onion.
      const onion = parseTronAddress(a.provider) ? (await withDirectory(a, false, (d) => findProvider(d, a.provider))).onion : a.provider;
      const m = await connectToNode(a.dataDir).call<MailboxView>('mailboxes.remove', { onion });
      print(a, m, () => `Dropped ${m.onion}`);
    })
    .command('sign-trust-list <providers..>', 'vouch for providers: print a trust list signed by this identity (others accept it with `mailboxes trust <file> --signer <you>`)', (yy) => yy
      .positional('providers', { type: 'string', array: true, demandOption: true, describe: 'provider onions' })
      .option('name', { type: 'string', demandOption: true, describe: 'what to call the list' })
      .option('days', { type: 'number', default: 90, describe: 'how long it holds' })
      .option('passphrase-file', { type: 'string' }), async (a) => {
      await cryptoReady();
      if (!(a.days > 0 && a.days <= 3650)) throw new CliError('USAGE', '--days must be 1..3650');
      const id = readKeyFile(dataPaths(a.dataDir).keyFile, await readPassphrase({ passphraseFile: a.passphraseFile }));
      let text: string;
      try {
        text = signTrustList(id, { name: a.name, providers: a.providers, now: Date.now(), lifetimeMs: a.days * 24 * 3600 * 1000 });
      } catch (err) {
        throw new CliError('USAGE', `not a trust list: ${(err as Error).message}`);
      }
      // The file itself is the output, --json or not.
      process.stdout.write(text);
    })
    .command('register', "list this node as a mailbox provider, staking TRX", (yy) => keyOptions(directoryOptions(yy))
      .option('retention-days', { type: 'number', default: 14 })
      .option('quota-mb', { type: 'number', default: 256 })
      .option('price', { type: 'string', default: '0', describe: 'per 30 days, in TRX (or in --token units); 0 = free' })
      .option('token', { type: 'string', describe: 'price in this TRC-20 token instead of TRX' })
      .option('stake', { type: 'string', demandOption: true, describe: 'TRX to lock while listed' })
      .option('passphrase-file', { type: 'string' }), async (a) => {
      await cryptoReady();
      const id = readKeyFile(dataPaths(a.dataDir).keyFile, await readPassphrase({ passphraseFile: a.passphraseFile }));
      const terms: ProviderTerms = { retentionDays: a.retentionDays, quotaMB: a.quotaMb, token: (a.token ?? null) as ProviderTerms['token'], price: parseAmount(a.price, '--price') };
      await withDirectory(a, true, async (d) => {
        const r = await d.register(id, terms, parseAmount(a.stake, '--stake'));
        print(a, { onion: id.onion, owner: d.address, txId: r.txId }, () => `Listed ${id.onion} as a mailbox provider (owner ${d.address}, tx ${r.txId})`);
      });
    })
    .command('leave', 'take this account’s provider out of the directory (the stake unlocks after the delay)', (yy) => keyOptions(directoryOptions(yy)), async (a) => {
      await withDirectory(a, true, async (d) => {
        const r = await d.deregister();
        print(a, { owner: d.address, txId: r.txId }, () => `Deregistered; the stake can be withdrawn after the withdrawal delay (tx ${r.txId})`);
      });
    })
    .command('withdraw', 'take back the stake once the withdrawal delay has passed', (yy) => keyOptions(directoryOptions(yy)), async (a) => {
      await withDirectory(a, true, async (d) => {
        const r = await d.withdraw();
        print(a, { owner: d.address, txId: r.txId }, () => `Stake withdrawn (tx ${r.txId})`);
      });
    })
    .demandCommand(1, 'providers list | show | pay | use | drop | sign-trust-list | register | leave | withdraw'), () => {});
}
