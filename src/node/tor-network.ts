/**
 * The real network: our own tor publishes our listener as our onion, and peers are dialled at
 * ws://<onion>/ through tor's SOCKS port, one isolation key per destination (separate circuits).
 *
 * Supervision: if tor exits while we run, the status becomes 'restarting', tor is launched again
 * with the same data dir (bounded backoff: 1, 2, 4 … 30 s), the same key is published again (same
 * onion), and the status returns to 'online' with `generation` + 1, which tells the node to resume
 * its outbox and re-check reachability. Dials during a restart fail fast with a retryable error.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sleep, systemClock, type Clock } from '../clock.js';
import { OnionpostError, describeError } from '../errors.js';
import { DEFAULT_LIMITS } from '../limits.js';
import type { Logger } from '../log.js';
import { TorSocksAgent, launchTor, publishOnion, type TestNetworkInfo, type TorProcess } from '../tor/index.js';
import { dialWs } from '../transport/index.js';
import type { NetworkStatus, PeerNetwork, PublishTarget } from './network.js';

export interface TorNetworkOptions {
  /** The node's data dir (tor uses `<dataDir>/tor`). */
  dataDir: string;
  /** Returns the ED25519-V3 key blob to publish (a secret; asked for at each publish). */
  keyBlob: () => string;
  torPath?: string;
  /** Join a private test network instead of the Tor network. */
  testNetwork?: TestNetworkInfo;
  logger: Logger;
  bootstrapTimeoutMs?: number;
  /** How long publish() waits for the first descriptor upload before going on anyway, ms. Default 60 s. */
  uploadWaitMs?: number;
  /** Concurrent streams one circuit may open to our onion; past it tor closes the circuit. Default limits.maxStreamsPerCircuit. */
  maxStreams?: number;
  /**
   * Publish as a configured service whose streams carry tor's PROXY line with the circuit id (the
   * listener then keeps its limits per circuit) and which has tor's intro-point DoS defence. Default
   * true; false publishes with ADD_ONION (no circuit ids). See src/tor/onion.ts for the trade-off.
   */
  exportCircuitIds?: boolean;
  /** Where the configured service's directory goes: a tmpfs. Default $XDG_RUNTIME_DIR, else /dev/shm, else `<dataDir>/tor`. */
  runtimeDir?: string;
  /** Times the restart backoff and the upload wait (and tor's own launch waits). Default systemClock. */
  clock?: Clock;
}

/** A directory on a tmpfs if the host has one we can write, so tor's copy of the key never reaches a disk. */
function pickRuntimeDir(dataDir: string): string {
  for (const d of [process.env['XDG_RUNTIME_DIR'], '/dev/shm']) {
    if (!d) continue;
    try {
      accessSync(d, fsConstants.W_OK);
      return d;
    } catch {
      // not writable here: try the next
    }
  }
  return join(dataDir, 'tor');
}

/** A dial refused because our own tor is not running right now; the outbox retries soon. */
export class TorDownError extends OnionpostError<'TOR_DOWN'> {
  constructor(message: string) {
    super('TOR_DOWN', message, { retryAdvice: { retryClass: 'soon', code: 'TOR_DOWN' } });
  }
}

export type TorNetwork = PeerNetwork & { readonly tor: TorProcess | undefined; status(): NetworkStatus & { generation: number } };

export function torNetwork(opts: TorNetworkOptions): TorNetwork {
  const log = opts.logger.child({ layer: 'tor' });
  const clock = opts.clock ?? systemClock;
  let tor: TorProcess | undefined;
  let status: NetworkStatus & { generation: number } = { mode: 'tor', bootstrap: 0, state: 'starting', generation: 0 };
  const listeners = new Set<(s: NetworkStatus) => void>();
  const agents = new Map<string, TorSocksAgent>();
  const closer = new AbortController();
  let published: { onion: string; target: PublishTarget } | undefined;
  let closing: Promise<void> | undefined;
  const exportCircuitIds = opts.exportCircuitIds ?? true;
  const serviceDir = exportCircuitIds ? join(opts.runtimeDir ?? pickRuntimeDir(opts.dataDir), `onionpost-hs-${process.pid}-${randomBytes(6).toString('hex')}`) : undefined;

  function set(s: Partial<typeof status>): void {
    status = { ...status, ...s };
    for (const l of listeners) l(status);
  }

  async function launch(): Promise<TorProcess> {
    set({ state: 'bootstrapping', bootstrap: 0 });
    const t = await launchTor({
      dataDir: opts.dataDir, logger: log, signal: closer.signal, clock, bootstrapTimeoutMs: opts.bootstrapTimeoutMs ?? 120_000,
      ...(opts.torPath ? { torPath: opts.torPath } : {}), ...(opts.testNetwork ? { network: opts.testNetwork } : {}),
      onProgress: (p) => set({ bootstrap: p.progress, state: p.progress >= 100 ? 'bootstrapped' : 'bootstrapping' }),
    });
    for (const a of agents.values()) a.destroy();
    agents.clear();
    tor = t;
    set({ bootstrap: 100, socksPort: t.socksPort, version: t.version.text });
    t.once('exit', (exit) => {
      if (closer.signal.aborted || tor !== t) return;
      log.warn({ exit }, 'tor exited; restarting it');
      tor = undefined;
      set({ state: 'restarting', bootstrap: 0 });
      void restart();
    });
    return t;
  }

  async function publishOn(t: TorProcess): Promise<void> {
    if (!published) return;
    set({ state: 'publishing' });
    const p = await publishOnion(t.control, {
      keyBlob: opts.keyBlob(), target: `127.0.0.1:${published.target.port}`, pow: t.features.pow,
      maxStreams: opts.maxStreams ?? DEFAULT_LIMITS.maxStreamsPerCircuit, maxStreamsCloseCircuit: true,
      ...(serviceDir ? { serviceDir } : {}), expectedServiceId: published.onion, signal: closer.signal,
    });
    const wait = opts.uploadWaitMs ?? 60_000;
    await Promise.race([p.uploaded, sleep(clock, wait, closer.signal)]).catch((err) => log.warn({ err: describeError(err) }, 'descriptor upload not confirmed'));
    set({ state: 'online', generation: status.generation + 1 });
  }

  async function restart(): Promise<void> {
    for (let attempt = 0; attempt < 1000 && !closer.signal.aborted; attempt++) {
      try {
        const t = await launch();
        await publishOn(t);
        log.info({ attempt }, 'tor restarted and onion re-published');
        return;
      } catch (err) {
        if (closer.signal.aborted) return;
        const delay = Math.min(30_000, 1000 * 2 ** attempt);
        log.error({ err: describeError(err), delay }, 'tor restart failed; trying again');
        set({ state: 'restarting' });
        await sleep(clock, delay, closer.signal);
      }
    }
  }

  function agentFor(onion: string, socksPort: number): TorSocksAgent {
    let a = agents.get(onion);
    if (!a || a.socksPort !== socksPort) {
      a?.destroy();
      a = new TorSocksAgent({ socksPort, keepAlive: false });
      agents.set(onion, a);
    }
    return a;
  }

  return {
    proxyProtocol: exportCircuitIds,
    get tor() {
      return tor;
    },
    async publish(onion, target) {
      published = { onion, target };
      const t = tor ?? (await launch());
      await publishOn(t);
    },
    async dial(onion, o) {
      const t = tor;
      if (!t || status.state === 'restarting') throw new TorDownError('our tor is restarting');
      const host = onion.endsWith('.onion') ? onion : `${onion}.onion`;
      const agent = agentFor(host, t.socksPort);
      try {
        return await dialWs({ url: `ws://${host}${o.path ?? '/'}`, agent, signal: o.signal, timeoutMs: o.timeoutMs, limits: o.limits });
      } catch (err) {
        // A failed dial gets a fresh isolation key next time, so tor builds new circuits instead of
        // retrying through one that may be stuck (e.g. toward a peer that restarted).
        if (agents.get(host) === agent) {
          agents.delete(host);
          agent.destroy();
        }
        throw err;
      }
    },
    status: () => status,
    onStatus(l) {
      listeners.add(l);
      return () => void listeners.delete(l);
    },
    close() {
      closing ??= (async () => {
        closer.abort();
        for (const a of agents.values()) a.destroy();
        agents.clear();
        const t = tor;
        tor = undefined;
        set({ state: 'stopped' });
        await t?.close();
        if (serviceDir) rmSync(serviceDir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
