/**
 * SMTP submission on 127.0.0.1 (smtp-server, from the nodemailer project): a mail client hands
 * the node a message, the node queues one onionpost message per recipient.
 *
 *   connect   refused (554) unless it comes from a loopback address
 *   AUTH      PLAIN or LOGIN with the bridge password (no TLS: loopback only); MAIL, RCPT and DATA
 *             need it (530); 3 wrong passwords close the connection
 *   MAIL FROM the user's own address (or empty)
 *   RCPT TO   resolved at once: an address outside the scheme, an unknown name, a bad onion
 *             checksum or the user's own address is refused here (550), never accepted and dropped
 *   DATA      parsed (mailparser), size-checked against what one onionpost message carries (552),
 *             then queued for each recipient; the reply names the queued message ids
 */
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerSession } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { OnionpostError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BridgeLimits } from '../limits.js';
import { parseAddress } from './address.js';
import { BridgeError } from './errors.js';
import { parseSubmission } from './inbound.js';
import type { MailPort, MailRecipient } from './port.js';
import { checkPassword, isLoopback } from './auth.js';

/** Codes of port errors that mean "this recipient does not exist", answered 550. */
const NO_SUCH_RECIPIENT = new Set(['UNKNOWN_RECIPIENT', 'NO_REGISTRY', 'BAD_ONION_ADDRESS', 'SELF', 'NOT_FOUND']);

function reply(code: number, message: string): Error {
  return Object.assign(new Error(message), { responseCode: code });
}

export interface SmtpOptions {
  port: number;
  host: string;
  password: string;
  mailPort: MailPort;
  limits: BridgeLimits;
  logger: Logger;
  /** How long RCPT may take to resolve a name, ms. */
  resolveTimeoutMs?: number;
}

export interface SmtpServerHandle {
  readonly port: number;
  close(): Promise<void>;
}

interface SessionState {
  recipients: Map<string, MailRecipient>;
  authFailures: number;
}

export async function startSmtp(o: SmtpOptions): Promise<SmtpServerHandle> {
  const log = o.logger;
  const port = o.mailPort;
  const states = new WeakMap<SMTPServerSession, SessionState>();
  const state = (s: SMTPServerSession): SessionState => {
    let st = states.get(s);
    if (!st) states.set(s, (st = { recipients: new Map(), authFailures: 0 }));
    return st;
  };
  // Size: what one message may carry, as base64 (4/3) with headers and MIME framing around it.
  const maxSize = Math.ceil((port.maxContentBytes * 4) / 3) + 64 * 1024;
  const server = new SMTPServer({
    name: 'onionpost', banner: 'onionpost mail bridge', logger: false, secure: false,
    disabledCommands: ['STARTTLS'], hideSTARTTLS: true, allowInsecureAuth: true, authMethods: ['PLAIN', 'LOGIN'],
    size: maxSize, maxClients: o.limits.maxConnections, maxRecipients: o.limits.maxRecipients,
    socketTimeout: o.limits.smtpIdleTimeoutMs, closeTimeout: 1_000, disableReverseLookup: true,
    ...({ maxAllowedUnauthenticatedCommands: o.limits.maxUnauthenticatedCommands } as object),
    onConnect(session, cb) {
      if (!isLoopback(session.remoteAddress)) {
        log.warn({ remote: session.remoteAddress }, 'smtp: refused a connection from outside this machine');
        return cb(reply(554, 'connections are accepted from this machine only'));
      }
      cb();
    },
    onAuth(auth: SMTPServerAuthentication, session, cb) {
      const st = state(session);
      if (checkPassword(auth.username ?? '', auth.password ?? '', port.ownAddress, o.password)) return cb(null, { user: port.ownAddress });
      st.authFailures++;
      log.warn({ failures: st.authFailures }, 'smtp: failed login');
      // smtp-server closes the connection after any 421 reply.
      if (st.authFailures >= o.limits.maxAuthFailures) return cb(reply(421, 'too many failed logins, closing'));
      cb(reply(535, 'wrong user name or password (the bridge password is in the data dir: onionpost bridge)'));
    },
    onMailFrom(address, session, cb) {
      state(session).recipients.clear();
      const from = address.address.toLowerCase();
      if (from && from !== port.ownAddress.toLowerCase()) return cb(reply(553, `you can send only as ${port.ownAddress}`));
      cb();
    },
    onRcptTo(address, session, cb) {
      const parsed = parseAddress(address.address);
      if (!parsed) return cb(reply(550, `${address.address} is not an onionpost address: write name@onionpost.onion or mail@<56 characters>.onion`));
      const signal = AbortSignal.timeout(o.resolveTimeoutMs ?? 30_000);
      port.resolve(parsed, { signal }).then(
        (r) => {
          state(session).recipients.set(address.address, r);
          cb();
        },
        (err: unknown) => {
          if (err instanceof OnionpostError && NO_SUCH_RECIPIENT.has(err.code)) return cb(reply(550, `${address.address}: ${err.message}`));
          log.warn({ err: err instanceof Error ? err.message : String(err) }, 'smtp: could not resolve a recipient');
          cb(reply(451, `${address.address}: cannot look this recipient up now, try again later`));
        },
      );
    },
    onData(stream: Readable, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if ((stream as Readable & { sizeExceeded?: boolean }).sizeExceeded) return cb(reply(552, `message larger than ${maxSize} bytes; an onionpost message carries at most ${port.maxContentBytes} bytes of text and files`));
        void submit(Buffer.concat(chunks), session).then((ids) => cb(null, `queued as ${ids.join(' ')}`), (err: Error) => cb(err));
      });
      stream.on('error', (err) => cb(err));
    },
  });

  async function submit(raw: Buffer, session: SMTPServerSession): Promise<string[]> {
    let content;
    try {
      content = await parseSubmission(raw);
    } catch (err) {
      if (err instanceof BridgeError && err.code === 'TOO_LARGE') throw reply(552, err.message);
      if (err instanceof BridgeError) throw reply(554, `${err.message}; nothing was sent`);
      throw err;
    }
    let threadId: string | undefined;
    const parentId = content.inReplyTo ?? content.references[content.references.length - 1] ?? null;
    const parent = parentId ? port.getMessage(parentId) : null;
    if (parent) threadId = parent.threadId;
    else if (content.references.length > 0) threadId = content.references[0];
    const ids: string[] = [];
    const signal = AbortSignal.timeout(60_000);
    for (const r of state(session).recipients.values()) {
      try {
        const sent = await port.send({
          to: r.to, subject: content.subject, body: content.body, attachments: content.attachments,
          ...(threadId ? { threadId } : {}), ...(parent ? { inReplyTo: parent.id } : {}),
        }, { signal });
        ids.push(sent.id);
      } catch (err) {
        if (err instanceof OnionpostError && err.code === 'TOO_LARGE') throw reply(552, `${err.message}; nothing was sent`);
        if (err instanceof OnionpostError && NO_SUCH_RECIPIENT.has(err.code)) throw reply(550, err.message);
        log.warn({ err: err instanceof Error ? err.message : String(err), queued: ids.length }, 'smtp: queueing failed');
        throw reply(451, ids.length ? `queued for ${ids.length} recipient(s), then failed: try again later` : 'could not queue the message, try again later');
      }
    }
    log.info({ recipients: ids.length }, 'smtp: message queued');
    return ids;
  }

  server.on('error', (err) => log.warn({ err: err.message }, 'smtp: server error'));
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(new BridgeError('LISTEN_FAILED', `cannot listen for SMTP on ${o.host}:${o.port}: ${err.message}`, { cause: err }));
    server.server.once('error', onError);
    server.listen(o.port, o.host, () => {
      server.server.off('error', onError);
      resolve();
    });
  });
  const bound = (server.server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port: bound,
    close() {
      closing ??= new Promise<void>((resolve) => server.close(() => resolve()));
      return closing;
    },
  };
}
