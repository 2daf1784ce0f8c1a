/**
 * Where a node keeps its files. One directory (mode 0700) per identity:
 *
 *   identity.json   the passphrase-encrypted key file (0600)
 *   node.db         SQLite: messages, outbox, contacts, dedup (+ -wal, -shm)
 *   provider.db     SQLite: mail held for others, when the node is a mailbox provider (--provide-mailbox)
 *   api-token       the local API's bearer token (0600), made at first start
 *   bridge-password the mail bridge's password for mail clients (0600), made at first start
 *   api.json        {url, pid} of the running node's API; removed when it stops
 *   registration.json  {network, name, owner, contract}: the name `register` claimed for this identity
 *   tor/            the node's own Tor data directory
 *   node.log        the running node's log (JSON lines)
 */
import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ONIONPOST_HOME) return env.ONIONPOST_HOME;
  const xdg = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(xdg, 'onionpost');
}

export function dataPaths(dataDir: string) {
  return {
    dataDir,
    keyFile: join(dataDir, 'identity.json'),
    db: join(dataDir, 'node.db'),
    providerDb: join(dataDir, 'provider.db'),
    apiToken: join(dataDir, 'api-token'),
    /** The seed (hex) of the direct onion's key when the node runs hidden (`start --hidden`). */
    directKey: join(dataDir, 'direct-onion-key'),
    bridgePassword: join(dataDir, 'bridge-password'),
    apiEndpoint: join(dataDir, 'api.json'),
    torDir: join(dataDir, 'tor'),
    log: join(dataDir, 'node.log'),
    registration: join(dataDir, 'registration.json'),
  };
}

export type DataPaths = ReturnType<typeof dataPaths>;

/**
 * How the user runs this CLI, for the commands we print: `onionpost` when that name on PATH is
 * this very program (installed or `npm link`ed), else `npx onionpost` (a clone, where npx finds the
 * package's own bin).
 */
export function cliName(env: NodeJS.ProcessEnv = process.env, self = process.argv[1]): string {
  const mine = self ? safeRealpath(self) : null;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const found = safeRealpath(join(dir, 'onionpost'));
    if (found && found === mine) return 'onionpost';
  }
  return 'npx onionpost';
}

function safeRealpath(p: string): string | null {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
}
