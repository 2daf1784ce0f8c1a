/**
 * Whose TRON key signs a write (register, deploy, providers pay…). Apart from registry-config.ts
 * because the dev accounts come from the chain layer, which loads the EVM: only the commands that
 * write import this.
 */
import { readFileSync } from 'node:fs';
import { deriveDevAccounts, DEFAULT_SEED } from '../chain/index.js';
import { CliError } from './prompt.js';
import { networkOf, type KeyArgs, type RegistryArgs } from './registry-config.js';

/** The TRON private key for writes: --tron-key-file, then $TRON_PRIVATE_KEY, then (dev only) --dev-account N. */
export function tronKey(a: KeyArgs & RegistryArgs, opts: { devDefault?: number } = {}): string {
  if (a.tronKeyFile) {
    try {
      return readFileSync(a.tronKeyFile, 'utf8').trim().replace(/^0x/, '');
    } catch (err) {
      throw new CliError('NO_KEY', `cannot read TRON key file ${a.tronKeyFile}`, { cause: err });
    }
  }
  if (process.env.TRON_PRIVATE_KEY) return process.env.TRON_PRIVATE_KEY.trim().replace(/^0x/, '');
  const account = a.devAccount ?? opts.devDefault;
  if (networkOf(a) === 'dev' && account !== undefined) {
    const acc = deriveDevAccounts(DEFAULT_SEED, account + 1)[account];
    if (!acc) throw new CliError('USAGE', `no dev account ${account}`);
    return acc.privateKey;
  }
  throw new CliError('NO_KEY', networkOf(a) === 'dev'
    ? 'no TRON key: pass --dev-account N (a prefunded dev-chain account), --tron-key-file FILE, or set TRON_PRIVATE_KEY'
    : 'no TRON key: pass --tron-key-file FILE or set TRON_PRIVATE_KEY (a funded account on this network)');
}
