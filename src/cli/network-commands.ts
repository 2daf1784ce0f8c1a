/**
 * Commands for the world around a node: the private Tor network (`testnet`), the local TRON dev
 * chain (`chain`), the registry contract (`deploy`), and names (`register`, `update`, `lookup`).
 * `register` and `update` publish the mailbox providers the node subscribed at (`mailboxes add`).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import { TronWeb } from 'tronweb';
import { cryptoReady, readKeyFile, type Identity, type OnionAddress } from '../crypto/index.js';
import { createLogger, silentLogger } from '../log.js';
import { DEFAULT_DEV_CHAIN_PORT, startDevChain } from '../chain/index.js';
import { deployAll, writeDeployment } from '../contract/index.js';
import { createTronRegistry, normalizeName, resolveNameOrOwner, type IdentityRegistry } from '../registry/index.js';
import { ApiError, connectToNode, recordView } from '../api/index.js';
import { openStore } from '../store/index.js';
import { downTestNetwork, upTestNetwork } from '../tor/index.js';
import { print, type GlobalArgs } from './common.js';
import { dataPaths } from './paths.js';
import { CliError, readPassphrase } from './prompt.js';
import { tronKey } from './tron-key.js';
import { fullHostOf, keyOptions, networkOf, registryTarget, userDeploymentsPath } from './registry-config.js';

const defaultTestnetDir = () => join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'onionpost-testnet');

function registryOptions<T>(y: Argv<T>) {
  return y
    .option('network', { type: 'string', default: 'dev', describe: 'TRON network: mainnet, nile, shasta or dev' })
    .option('full-host', { type: 'string', describe: "TRON node URL (default: the network's)" })
    .option('registry', { type: 'string', describe: 'registry contract address (default: the recorded deployment)' });
}


/**
 * The mailbox providers of the node on `dataDir` (`mailboxes add`), for its registry record: asked
 * of the running node, else read from its store (the node is not running).
 */
async function savedMailboxes(dataDir: string): Promise<OnionAddress[]> {
  try {
    return (await connectToNode(dataDir).call<{ onion: string }[]>('mailboxes.list')).map((m) => m.onion as OnionAddress);
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'NODE_NOT_RUNNING')) throw err;
  }
  const path = dataPaths(dataDir).db;
  if (!existsSync(path)) return [];
  const store = openStore({ path, logger: silentLogger() });
  try {
    return store.mailboxProviders.list().map((m) => m.onion as OnionAddress);
  } finally {
    store.close();
  }
}

/**
 * Whether the record says we run hidden (`h=1`): as asked (`--hidden` / `--no-hidden`), else as the
 * running node runs; undefined when neither tells (update then keeps what is published).
 */
async function hiddenFlag(dataDir: string, asked: boolean | undefined): Promise<boolean | undefined> {
  if (asked !== undefined) return asked;
  try {
    return (await connectToNode(dataDir).call<{ hidden?: unknown }>('node.status')).hidden !== undefined;
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'NODE_NOT_RUNNING')) throw err;
    return undefined;
  }
}

/** What `register` and `update` write with: our identity, the registry with the TRON key, our mailbox providers. */
async function withRegistryWrite(
  a: GlobalArgs & Parameters<typeof registryTarget>[0] & Parameters<typeof tronKey>[0] & { passphraseFile?: string | undefined },
  fn: (w: { identity: Identity; target: NonNullable<ReturnType<typeof registryTarget>>; registry: IdentityRegistry; mailboxes: OnionAddress[] }) => Promise<void>,
): Promise<void> {
  await cryptoReady();
  const identity = readKeyFile(dataPaths(a.dataDir).keyFile, await readPassphrase({ passphraseFile: a.passphraseFile }));
  const target = registryTarget(a, true)!;
  const registry = createTronRegistry({ fullHost: target.fullHost, contractAddress: target.contractAddress, tronPrivateKey: tronKey(a) });
  try {
    await fn({ identity, target, registry, mailboxes: await savedMailboxes(a.dataDir) });
  } finally {
    registry.close();
  }
}

export function registerNetworkCommands(cli: Argv<GlobalArgs>): void {
  cli.command('testnet', 'a private Tor network on 127.0.0.1 for tests and demos', (y) => y
    .command('up', 'build and start it (about a minute), then print how nodes join', (yy) => yy
      .option('dir', { type: 'string', default: defaultTestnetDir(), describe: 'where the network lives' })
      .option('relays', { type: 'number', default: 2, describe: 'relays besides the 3 authorities (≥ 2)' }), async (a) => {
      const net = await upTestNetwork({ dir: a.dir, relays: a.relays, log: (l) => process.stderr.write(`testnet: ${l}\n`) });
      print(a as unknown as GlobalArgs, { dir: net.dir, dirAuthorities: net.info.dirAuthorities }, () =>
        `Private Tor network up in ${net.dir}\nJoin it with:  onionpost start --tor-network ${net.dir}\nStop it with:  onionpost testnet down --dir ${net.dir}`);
    })
    .command('down', 'stop it (no tor process is left)', (yy) => yy.option('dir', { type: 'string', default: defaultTestnetDir() }), async (a) => {
      await downTestNetwork(a.dir);
      print(a as unknown as GlobalArgs, { stopped: a.dir }, () => `Private Tor network in ${a.dir} stopped.`);
    })
    .demandCommand(1, 'testnet up or testnet down'), () => {});

  cli.command('chain', 'run a local TRON dev chain for the registry (offline)', (y) => y
    .option('port', { type: 'number', default: DEFAULT_DEV_CHAIN_PORT })
    .option('host', { type: 'string', default: '127.0.0.1' })
    .option('accounts', { type: 'number', default: 5 }), async (a) => {
    const chain = await startDevChain({ host: a.host, port: a.port, accounts: a.accounts, logger: createLogger({ level: 'warn' }) });
    print(a, { url: chain.url, accounts: chain.accounts.map((x, i) => ({ index: i, address: x.address, privateKey: x.privateKey })) }, () => [
      `TRON dev chain at ${chain.url} (chain id ${chain.chainId})`,
      'Prefunded accounts (dev only; use with --dev-account N):',
      ...chain.accounts.map((x, i) => `  ${i}  ${x.address}  ${x.privateKey}`),
      `Deploy the registry:  onionpost deploy --network dev`,
      'Ctrl-C stops it (state is in memory).',
    ].join('\n'));
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await chain.close();
  });

  cli.command('deploy', 'deploy the registry and provider-directory contracts and record their addresses', (y) => keyOptions(registryOptions(y))
    .option('min-commit-age', { type: 'number', describe: 'seconds a name commitment must age (default 60; dev 1)' })
    .option('min-stake', { type: 'number', describe: 'TRX a mailbox provider must stake to be listed (default 1000; dev 100)' })
    .option('withdrawal-delay-days', { type: 'number', describe: "days a leaving provider's stake stays locked (default 30; dev 1)" })
    .option('timeout', { type: 'number', default: 180, describe: 'seconds to wait for confirmation' }), async (a) => {
    const network = networkOf(a);
    const fullHost = fullHostOf(a);
    const privateKey = tronKey(a, { devDefault: 0 });
    const tronWeb = new TronWeb({ fullHost, privateKey });
    const dev = network === 'dev';
    const minStakeSun = Math.round((a.minStake ?? (dev ? 100 : 1000)) * 1_000_000);
    const delay = Math.round((a.withdrawalDelayDays ?? (dev ? 1 : 30)) * 86_400);
    const { registry: d, directory, token } = await deployAll({
      tronWeb, timeoutMs: a.timeout * 1000, minCommitmentAge: a.minCommitAge ?? (dev ? 1 : 60), maxCommitmentAge: 86_400,
      minStakeSun, withdrawalDelaySeconds: delay, testToken: dev,
    });
    const file = userDeploymentsPath();
    writeDeployment(network, {
      address: d.address, txId: d.txId, deployedAt: new Date().toISOString(), fullHost, directory: directory.address, ...(token ? { token: token.address } : {}),
    }, file);
    print(a, { network, address: d.address, txId: d.txId, directory: directory.address, token: token?.address ?? null, fullHost, deploymentsFile: file }, () => [
      `IdentityRegistry deployed on ${network} at ${d.address}`, `  tx: ${d.txId}`,
      `ProviderDirectory at ${directory.address} (stake ≥ ${minStakeSun / 1e6} TRX, locked ${delay / 86_400} days after leaving)`,
      ...(token ? [`TestToken (TRC-20, OPTD) at ${token.address}`] : []),
      `  recorded in ${file}: later commands on ${network} find them by themselves`,
    ].join('\n'));
  });

  cli.command('register <name>', "publish this node's signed keys and mailbox providers under a name in the registry", (y) => keyOptions(registryOptions(y))
    .positional('name', { type: 'string', demandOption: true })
    .option('hidden', { type: 'boolean', describe: 'publish that you run hidden (default: as the running node runs)' })
    .option('passphrase-file', { type: 'string' }), (a) => withRegistryWrite(a, async ({ identity, target, registry, mailboxes }) => {
    const hidden = (await hiddenFlag(a.dataDir, a.hidden)) ?? false;
    const r = await registry.register(identity, a.name, {
      mailboxes, hidden,
      onProgress: (p) => {
        if (!a.json) process.stderr.write(p.stage === 'committed' ? 'committed the name claim…\n' : p.stage === 'waiting' ? 'waiting for the commitment to age…\n' : 'registered.\n');
      },
    });
    // `start` on this network claims the name to recipients (they verify it by looking it up).
    writeFileSync(dataPaths(a.dataDir).registration, JSON.stringify({ network: target.network, name: normalizeName(a.name), owner: registry.address, contract: target.contractAddress }), { mode: 0o600 });
    print(a, { name: a.name, onion: identity.onion, owner: registry.address, txId: r.txId, version: r.version, mailboxes, hidden }, () =>
      `Registered "${a.name}" → ${identity.onion}${hidden ? ' (hidden)' : ''} (owner ${registry.address}, version ${r.version})${mailboxes.length ? `, mailboxes ${mailboxes.join(', ')}` : ''}`);
  }));

  cli.command('update', "publish this node's current keys and mailbox providers as the next version of its registry record", (y) => keyOptions(registryOptions(y))
    .option('hidden', { type: 'boolean', describe: 'publish that you run hidden, or (--no-hidden) not (default: as the running node runs; else as published)' })
    .option('passphrase-file', { type: 'string' }), (a) => withRegistryWrite(a, async ({ identity, registry, mailboxes }) => {
    const hidden = await hiddenFlag(a.dataDir, a.hidden);
    const r = await registry.update(identity, { mailboxes, ...(hidden !== undefined ? { hidden } : {}) });
    print(a, { onion: identity.onion, owner: registry.address, txId: r.txId, version: r.version, mailboxes, ...(hidden !== undefined ? { hidden } : {}) }, () =>
      `Updated the record of ${registry.address} to version ${r.version}: ${identity.onion}${hidden ? ' (hidden)' : ''}, mailboxes ${mailboxes.length ? mailboxes.join(', ') : 'none'}`);
  }));

  cli.command('lookup <name>', 'resolve and verify a registry name or TRON address', (y) => registryOptions(y).positional('name', { type: 'string', demandOption: true }), async (a) => {
    await cryptoReady();
    const target = registryTarget(a, true)!;
    const registry = createTronRegistry({ fullHost: target.fullHost, contractAddress: target.contractAddress });
    try {
      const rec = await resolveNameOrOwner(registry, a.name);
      if (!rec) throw new CliError('NOT_FOUND', `"${a.name}" is not registered on ${target.network}`);
      const v = recordView(rec);
      print(a, v, () => [`${v.name} (verified, version ${v.version})`, `  onion:          ${v.onion ?? 'none: hidden (reach them through their mailbox providers)'}`, `  owner:          ${v.owner}`, `  identity key:   ${v.identityKey}`, `  encryption key: ${v.encryptionKey}`, ...(v.mailboxes.length ? [`  mailboxes:      ${v.mailboxes.join(', ')}`] : [])].join('\n'));
    } finally {
      registry.close();
    }
  });
}
