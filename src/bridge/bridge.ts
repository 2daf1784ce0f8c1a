/**
 * The mail bridge: SMTP submission and IMAP on 127.0.0.1 for the node's own user, talking to the
 * node only through a MailPort. Start order SMTP → IMAP; close() stops them in reverse, once.
 */
import { systemClock, type Clock } from '../clock.js';
import { DEFAULT_BRIDGE_LIMITS, type BridgeLimits } from '../limits.js';
import type { Logger } from '../log.js';
import { BridgeError } from './errors.js';
import { startImap, type ImapServerHandle } from './imap-server.js';
import type { MailPort } from './port.js';
import { startSmtp, type SmtpServerHandle } from './smtp.js';

export const BRIDGE_HOST = '127.0.0.1';

export interface MailBridgeOptions {
  mailPort: MailPort;
  /** The bridge password (the user name is the port's ownAddress). */
  password: string;
  /** 0 = any free port. */
  smtpPort: number;
  imapPort: number;
  logger: Logger;
  clock?: Clock;
  limits?: Partial<BridgeLimits>;
}

export interface MailBridge {
  readonly smtp: { host: string; port: number };
  readonly imap: { host: string; port: number };
  readonly user: string;
  close(): Promise<void>;
}

export async function createMailBridge(o: MailBridgeOptions): Promise<MailBridge> {
  if (o.password.length < 16) throw new BridgeError('WEAK_PASSWORD', 'the bridge password must be at least 16 characters');
  const limits = { ...DEFAULT_BRIDGE_LIMITS, ...o.limits };
  const clock = o.clock ?? systemClock;
  const smtp: SmtpServerHandle = await startSmtp({ port: o.smtpPort, host: BRIDGE_HOST, password: o.password, mailPort: o.mailPort, limits, logger: o.logger.child({ part: 'smtp' }) });
  let imap: ImapServerHandle;
  try {
    imap = await startImap({ port: o.imapPort, host: BRIDGE_HOST, password: o.password, mailPort: o.mailPort, limits, logger: o.logger.child({ part: 'imap' }), now: () => clock.now() });
  } catch (err) {
    await smtp.close();
    throw err;
  }
  o.mailPort.folders.sync();
  let closing: Promise<void> | undefined;
  return {
    smtp: { host: BRIDGE_HOST, port: smtp.port },
    imap: { host: BRIDGE_HOST, port: imap.port },
    user: o.mailPort.ownAddress,
    close() {
      closing ??= (async () => {
        await imap.close();
        await smtp.close();
      })();
      return closing;
    },
  };
}
