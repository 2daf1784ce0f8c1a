/**
 * `onionpost bridge`: the mail bridge's settings, from the running node (API method
 * bridge.settings), for a person to paste into a mail client or a script (`--json`) to configure one;
 * and `onionpost settings`, the user's own settings on the node.
 */
import type { Argv } from 'yargs';
import { connectToNode } from '../api/index.js';
import type { GlobalArgs } from './common.js';

/** Fixed defaults, so a mail client's settings survive a restart; `--smtp-port 0` picks any free port. */
export const BRIDGE_DEFAULT_PORTS = Object.freeze({ smtp: 2587, imap: 2143 });

export interface BridgeSettings {
  smtp: { host: string; port: number };
  imap: { host: string; port: number };
  user: string;
  password: string;
  address: string;
}

/** The settings as a person enters them in Thunderbird (or any client). */
export function bridgeSettingsText(s: BridgeSettings, name = 'onionpost'): string {
  return [
    `Mail client settings (${name}):`,
    `  Your address:   ${s.address}`,
    `  Incoming mail:  IMAP, server ${s.imap.host}, port ${s.imap.port}, connection security: none, authentication: normal password`,
    `  Outgoing mail:  SMTP, server ${s.smtp.host}, port ${s.smtp.port}, connection security: none, authentication: normal password`,
    `  User name:      ${s.user} (both)`,
    `  Password:       ${s.password}`,
    `  Write to:       name@onionpost.onion (a contact or registered name), mail@<56 characters>.onion (an onion)`,
  ].join('\n');
}

export function registerBridgeCommand(cli: Argv<GlobalArgs>): void {
  cli.command('bridge', 'mail bridge settings for a mail client (SMTP/IMAP on 127.0.0.1), from the running node', (y) => y, async (a) => {
    const s = await connectToNode(a.dataDir).call<BridgeSettings>('bridge.settings');
    process.stdout.write(a.json ? `${JSON.stringify(s, null, 2)}\n` : `${bridgeSettingsText(s)}\n`);
  });
}

/** `onionpost settings [--read-receipts on|off]`: the user's settings on the running node (settings.get / settings.set). */
export function registerSettingsCommand(cli: Argv<GlobalArgs>): void {
  cli.command(
    'settings',
    'your settings on the running node: whether contacts see when you read their chat messages',
    (y) => y.option('read-receipts', { type: 'string', choices: ['on', 'off'], describe: 'send read receipts for chat messages (off by default)' }),
    async (a) => {
      const api = connectToNode(a.dataDir);
      const asked = a.readReceipts as 'on' | 'off' | undefined;
      const s = asked === undefined
        ? await api.call<{ readReceipts: boolean }>('settings.get')
        : await api.call<{ readReceipts: boolean }>('settings.set', { readReceipts: asked === 'on' });
      process.stdout.write(a.json ? `${JSON.stringify(s)}\n` : `read receipts: ${s.readReceipts ? 'on (contacts see when you read their chat messages)' : 'off'}\n`);
    },
  );
}
