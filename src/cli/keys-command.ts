/**
 * `onionpost keys rotate`: a new identity (and so a new onion address) for this node, vouched for
 * by the old one, published in the registry so that contacts who found us there move with us.
 *
 *   1. refuse while the node runs (NODE_RUNNING): its onion, sessions and mailbox fetches are the
 *      old key's; the node adopts the new one at its next start (src/node resets the old sessions)
 *   2. make the new identity and keep it beside the old one (identity.next.json, 0600, same
 *      passphrase); a run that stopped part-way finds it there and finishes with it
 *   3. sign a rotation statement (old key vouches for the new one, the new one accepts) and publish
 *      the new keys with it as the next version of our registry record (same TRON key options as
 *      `update`); a record that already names the new key (an earlier run got this far) is left
 *   4. copy the old key file to identity.retired-<onion prefix>.json (0600) and move the new one
 *      into place (rename: identity.json is the old or the new identity at every moment)
 *
 * Without a registry (`--local-only`) only 2 and 4 happen: contacts cannot follow and must be given
 * the new address. Errors: NODE_RUNNING, NOT_REGISTERED (no record to update, and no
 * --local-only), KEY_MISMATCH (our record names a key that is neither the old nor the new one),
 * and those of the key file and the registry.
 */
import { copyFileSync, chmodSync, existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import { ApiError, connectToNode } from '../api/index.js';
import { bytesEqual, toHex } from '../bytes.js';
import {
  KDF_DEFAULT, KDF_FAST, cryptoReady, generateIdentity, readKeyFile, signRotation, writeKeyFile, type Identity,
} from '../crypto/index.js';
import { silentLogger } from '../log.js';
import { createTronRegistry } from '../registry/index.js';
import { OWN_IDENTITY_SETTING, openStore } from '../store/index.js';
import { print, type GlobalArgs } from './common.js';
import { cliName, dataPaths, defaultDataDir } from './paths.js';
import { CliError, readPassphrase } from './prompt.js';
import { keyOptions, registryTarget, type KeyArgs, type RegistryArgs } from './registry-config.js';
import { tronKey } from './tron-key.js';

interface RotateArgs extends GlobalArgs, RegistryArgs, KeyArgs {
  passphraseFile?: string | undefined;
  localOnly: boolean;
  timeout: number;
  kdf: 'default' | 'fast';
}

/** What `keys rotate --json` prints. */
export interface RotateResult {
  previousOnion: string;
  onion: string;
  identityKey: string;
  encryptionKey: string;
  /** Where the old key file is kept (0600) for the transition. */
  retiredKeyFile: string;
  /** The registry record now published, or null with --local-only. */
  registry: { network: string; owner: string; name: string; version: number; txId: string | null } | null;
  /** Mailbox providers subscribed by the old key: to be added again under the new one. */
  mailboxes: string[];
}

/** The registry `register` recorded for this identity (registration.json), if any. */
function registration(file: string): { network?: string; contract?: string; name?: string } | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as { network?: string; contract?: string; name?: string };
  } catch {
    return null;
  }
}

export function registerKeysCommands(cli: Argv<GlobalArgs>): void {
  cli.command('keys', "this identity's keys", (y) => y
    .command(
      'rotate',
      'move to a new identity (a new onion address), vouched for by the old key in the registry (the node must be stopped)',
      (yy) => keyOptions(yy
        .option('network', { type: 'string', describe: 'TRON network: mainnet, nile, shasta or dev (default: the one `register` recorded)' })
        .option('full-host', { type: 'string', describe: "TRON node URL (default: the network's)" })
        .option('registry', { type: 'string', describe: 'registry contract address (default: the one `register` recorded)' }))
        .option('passphrase-file', { type: 'string', describe: 'read the passphrase from this file (else $ONIONPOST_PASSPHRASE, else a prompt); the new key file gets the same one' })
        .option('local-only', { type: 'boolean', default: false, describe: 'no registry record to update: only make the new identity (contacts must be given the new address)' })
        .option('timeout', { type: 'number', default: 180, describe: 'seconds to wait for the registry' })
        .option('kdf', { choices: ['default', 'fast'] as const, default: 'default' as const, hidden: true }),
      async (a) => {
        const r = await rotateKeys(a as unknown as RotateArgs);
        const dirArg = a.dataDir === defaultDataDir() ? '' : ` --data-dir ${a.dataDir}`;
        print(a, r, () => [
          `Rotated: your address is now ${r.onion}`,
          `  was:            ${r.previousOnion} (old key kept in ${r.retiredKeyFile})`,
          r.registry
            ? `  registry:       "${r.registry.name}" on ${r.registry.network}, version ${r.registry.version}, with a statement signed by the old key; contacts who look you up there follow you`
            : '  registry:       not updated (--local-only): give your contacts the new address',
          ...(r.mailboxes.length ? [`  mailboxes:      subscribed by the old key; after starting, add them again: ${r.mailboxes.map((m) => `${cliName()}${dirArg} mailboxes add ${m}`).join('; ')}`] : []),
          `Start your node again: ${cliName()} start${dirArg}${a.network ? ` --network ${a.network}` : ''}`,
        ].join('\n'));
      },
    )
    .demandCommand(1, 'name a keys subcommand: rotate'), () => {});
}

async function rotateKeys(a: RotateArgs): Promise<RotateResult> {
  const paths = dataPaths(a.dataDir);
  try {
    connectToNode(a.dataDir);
    throw new CliError('NODE_RUNNING', `the node on ${a.dataDir} is running: stop it (Ctrl-C in its terminal), rotate, then start it again`);
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'NODE_NOT_RUNNING')) throw err;
  }
  await cryptoReady();
  const passphrase = await readPassphrase({ passphraseFile: a.passphraseFile });
  const old = readKeyFile(paths.keyFile, passphrase);

  const reg = registration(paths.registration);
  const useRegistry = !a.localOnly;
  const target = useRegistry ? targetOf(a, reg) : null;

  const pending = join(a.dataDir, 'identity.next.json');
  let next: Identity;
  if (existsSync(pending)) {
    next = readKeyFile(pending, passphrase);
  } else {
    next = generateIdentity();
    writeKeyFile(pending, next, passphrase, { strength: a.kdf === 'fast' ? KDF_FAST : KDF_DEFAULT });
  }

  let published: RotateResult['registry'] = null;
  if (target) published = await publish(a, target, old, next);

  const mailboxes = recordOldIdentity(paths.db, old);
  const retiredKeyFile = join(a.dataDir, `identity.retired-${old.onion.slice(0, 16)}.json`);
  copyFileSync(paths.keyFile, retiredKeyFile);
  chmodSync(retiredKeyFile, 0o600);
  renameSync(pending, paths.keyFile);
  return {
    previousOnion: old.onion, onion: next.onion, identityKey: toHex(next.identityKey), encryptionKey: toHex(next.encryptionKey),
    retiredKeyFile, registry: published, mailboxes,
  };
}

/** The registry to update: the options given, else what `register` recorded; NOT_REGISTERED when neither says. */
function targetOf(a: RotateArgs, reg: { network?: string; contract?: string } | null) {
  if (!a.network && !a.fullHost && !a.registry && !reg) {
    throw new CliError('NOT_REGISTERED', 'this identity has no registry record this machine knows of (`register` was not run here): pass --network/--registry with your TRON key options, or --local-only to rotate without telling contacts');
  }
  const network = a.network ?? reg?.network;
  const registry = a.registry ?? (!a.network || a.network === reg?.network ? reg?.contract : undefined);
  return registryTarget({ network, fullHost: a.fullHost, registry }, true)!;
}

/** Publishes `next` with the rotation statement as our record's next version (unless it already is). */
async function publish(a: RotateArgs, target: NonNullable<ReturnType<typeof registryTarget>>, old: Identity, next: Identity): Promise<NonNullable<RotateResult['registry']>> {
  const registry = createTronRegistry({ fullHost: target.fullHost, contractAddress: target.contractAddress, tronPrivateKey: tronKey({ ...a, network: target.network }) });
  const signal = AbortSignal.timeout(a.timeout * 1000);
  try {
    const owner = registry.address!;
    const current = await registry.resolveOwner(owner, { fresh: true, signal });
    if (!current) throw new CliError('NOT_REGISTERED', `${owner} owns no name in the registry on ${target.network}; register first, or pass --local-only`);
    if (bytesEqual(current.identityKey, next.identityKey)) {
      // An earlier run published it and stopped before the key files moved.
      return { network: target.network, owner, name: current.name, version: current.version, txId: null };
    }
    if (!bytesEqual(current.identityKey, old.identityKey)) {
      throw new CliError('KEY_MISMATCH', `the record of ${owner} ("${current.name}") names another identity (${current.onion}), not this one (${old.onion}): this key cannot vouch for a successor there`);
    }
    const w = await registry.update(next, { rotation: signRotation(old, next, Date.now()), signal });
    return { network: target.network, owner, name: current.name, version: w.version, txId: w.txId };
  } finally {
    registry.close();
  }
}

/**
 * Notes the old identity in the node's store (if no node recorded one yet), so the next start sees
 * the change and resets the old key's sessions; returns the mailbox providers the old key subscribed.
 */
function recordOldIdentity(dbPath: string, old: Identity): string[] {
  if (!existsSync(dbPath)) return [];
  const store = openStore({ path: dbPath, logger: silentLogger() });
  try {
    if (store.getSetting(OWN_IDENTITY_SETTING) === null) store.setSetting(OWN_IDENTITY_SETTING, toHex(old.identityKey));
    return store.mailboxProviders.list().map((m) => m.onion);
  } finally {
    store.close();
  }
}

