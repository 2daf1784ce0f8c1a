/**
 * The IMAP listener on 127.0.0.1: one ImapSession per connection, a shared cache of rendered
 * messages, and the port's change events fanned out to the sessions (IDLE).
 *
 * A connection from a non-loopback address is closed at once (defence in depth: we only ever bind
 * 127.0.0.1). Limits: connections (maxConnections, beyond it `* BYE` and close), idle time
 * (imapIdleTimeoutMs), and output a client leaves unread (imapMaxPendingOutputBytes: we stop
 * reading its commands until it catches up).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from '../log.js';
import type { BridgeLimits } from '../limits.js';
import { isLoopback } from './auth.js';
import { renderBounce, type BounceState } from './dsn.js';
import { BridgeError } from './errors.js';
import { ImapSession } from './imap-session.js';
import { untagged } from './imap-writer.js';
import type { Mailbox, RenderedMessage } from './mime.js';
import type { FolderEntry, MailPort } from './port.js';
import { renderMail } from './render.js';

export interface ImapOptions {
  port: number;
  host: string;
  password: string;
  mailPort: MailPort;
  limits: BridgeLimits;
  logger: Logger;
  now: () => number;
  /** Rendered messages kept for repeated FETCHes, bytes. Default 32 MiB. */
  cacheBytes?: number;
}

export interface ImapServerHandle {
  readonly port: number;
  /** Connections open now. */
  readonly connections: number;
  close(): Promise<void>;
}

/** Renders folder entries, keeping the most recently used ones up to a byte budget. */
class RenderCache {
  readonly #map = new Map<string, RenderedMessage>();
  #bytes = 0;
  constructor(readonly port: MailPort, readonly own: Mailbox, readonly budget: number) {}

  get(e: FolderEntry): RenderedMessage | null {
    const key = `${e.ref}|${e.version ?? ''}|${e.addedAt}`;
    const hit = this.#map.get(key);
    if (hit) {
      this.#map.delete(key);
      this.#map.set(key, hit);
      return hit;
    }
    const r = this.#render(e);
    if (!r) return null;
    this.#map.set(key, r);
    this.#bytes += r.raw.length;
    for (const [k, v] of this.#map) {
      if (this.#bytes <= this.budget || this.#map.size <= 1) break;
      this.#map.delete(k);
      this.#bytes -= v.raw.length;
    }
    return r;
  }

  #render(e: FolderEntry): RenderedMessage | null {
    const dsn = /^dsn:([0-9a-f]{32}):(failed|expired|held)$/.exec(e.ref);
    const m = this.port.getMessage(dsn ? dsn[1]! : e.ref);
    if (!m) return null;
    return dsn ? renderBounce(m, dsn[2] as BounceState, this.own, e.addedAt) : renderMail(m, this.own, e.version);
  }
}

export async function startImap(o: ImapOptions): Promise<ImapServerHandle> {
  const log = o.logger;
  const cache = new RenderCache(o.mailPort, { name: '', address: o.mailPort.ownAddress }, o.cacheBytes ?? 32 * 1024 * 1024);
  const sessions = new Map<Socket, ImapSession>();
  let notifyScheduled = false;
  const unsubscribe = o.mailPort.subscribe(() => {
    if (notifyScheduled) return;
    notifyScheduled = true;
    setImmediate(() => {
      notifyScheduled = false;
      for (const s of sessions.values()) s.changed();
    });
  });

  const server: Server = createServer((socket) => {
    socket.on('error', (err) => log.debug({ err: err.message }, 'imap: socket error'));
    if (!isLoopback(socket.remoteAddress)) {
      log.warn({ remote: socket.remoteAddress }, 'imap: refused a connection from outside this machine');
      socket.end(untagged('BYE connections are accepted from this machine only'));
      return;
    }
    if (sessions.size >= o.limits.maxConnections) {
      socket.end(untagged('BYE too many connections, try again later'));
      return;
    }
    const session = new ImapSession({
      port: o.mailPort, password: o.password, limits: o.limits, logger: log, now: o.now, render: (e) => cache.get(e),
      write: (b) => {
        if (socket.destroyed) return;
        socket.write(b);
        if (socket.writableLength > o.limits.imapMaxPendingOutputBytes) {
          socket.pause();
          socket.once('drain', () => socket.resume());
        }
      },
      end: () => socket.end(),
    });
    sessions.set(socket, session);
    socket.setTimeout(o.limits.imapIdleTimeoutMs, () => {
      session.shutdown();
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => session.receive(chunk));
    socket.on('close', () => sessions.delete(socket));
    session.greet();
  });
  server.maxConnections = o.limits.maxConnections * 2;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(new BridgeError('LISTEN_FAILED', `cannot listen for IMAP on ${o.host}:${o.port}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(o.port, o.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => log.warn({ err: err.message }, 'imap: server error'));
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    get connections() {
      return sessions.size;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        unsubscribe();
        server.close(() => resolve());
        for (const [socket, s] of sessions) {
          s.shutdown();
          socket.destroySoon();
          setTimeout(() => socket.destroy(), 1_000).unref();
        }
      });
      return closing;
    },
  };
}
