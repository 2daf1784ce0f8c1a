/**
 * Publishing the node's onion service on an owned control connection, one of two ways:
 *
 *   ephemeral (default): SETEVENTS (+HS_DESC) → ADD_ONION <key> Port=virt,target [MaxStreams=…]
 *                 → check ServiceID → `uploaded` resolves on the first `650 HS_DESC UPLOADED <serviceId> …`
 *   configured (`serviceDir`): the same, but instead of ADD_ONION: write the key as tor's
 *                 `hs_ed25519_secret_key` into serviceDir (0600 in 0700) → SETCONF HiddenServiceDir,
 *                 HiddenServicePort, HiddenServiceExportCircuitID=haproxy, HiddenServiceMaxStreams(+CloseCircuit),
 *                 HiddenServiceEnableIntroDoSDefense, [HiddenServicePoWDefensesEnabled] → delete the key
 *                 file (tor holds the key in memory) → ServiceID from serviceDir/hostname.
 *
 * Why two: ADD_ONION has no ExportCircuitID (tor 0.4.9.11 answers `512 … Unrecognized keyword
 * argument "ExportCircuitID"`) and no intro-point DoS defence, and those two are what let the
 * listener keep limits per Tor circuit (tor puts a PROXY line naming the circuit in front of each
 * stream) and have tor rate-limit introductions. The price: the key is on disk for the moment
 * tor reads it (serviceDir should be on a tmpfs; the node uses $XDG_RUNTIME_DIR or /dev/shm), and
 * tor re-reads the key whenever its configuration is reloaded (any later SETCONF, or SIGHUP): with
 * the file gone it then exits (measured: "Error loading rendezvous service keys … Dying"), which
 * the node's supervision answers like any tor death (restart, publish again). So nothing may SETCONF
 * a tor that carries a configured service.
 *
 * The service is not detached: it lives as long as the control connection that added it (for a
 * TorProcess, as long as tor itself). Whoever owns the TorProcess keeps `control` open while the
 * node is online, and re-publishes with the same key after restarting tor (same ServiceID).
 * An HS_DESC UPLOADED means one HSDir has the descriptor; it does not prove reachability: check that
 * with socksConnect to the onion through the same or another tor.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TorControl, HsDescEvent } from './control.js';
import { TorError, TorProtocolError } from './errors.js';

/** The 32-byte header of tor's `hs_ed25519_secret_key` file, before the 64-byte expanded key. */
const SECRET_KEY_HEADER = '== ed25519v1-secret: type0 ==\0\0\0';

export interface PublishOnionOptions {
  /** `ED25519-V3:` + base64 of the 64-byte expanded secret key. Never logged. */
  keyBlob: string;
  /** Onion port. Default 80. */
  virtPort?: number;
  /** Local listener, `127.0.0.1:<port>`. */
  target: string;
  /** Enable PoW (pass TorProcess.features.pow). Default false. */
  pow?: boolean;
  maxStreams?: number;
  /** Close the whole circuit (not just the stream) when it exceeds maxStreams. Default false. */
  maxStreamsCloseCircuit?: boolean;
  /**
   * Publish as a configured service in this directory (0700, created if missing; best on a tmpfs),
   * with tor's PROXY line naming each stream's circuit in front of every connection to `target`.
   * Without it, an ephemeral ADD_ONION service (no circuit ids).
   */
  serviceDir?: string;
  /** ServiceID (with or without ".onion") the key must produce; ONION_MISMATCH otherwise. */
  expectedServiceId?: string;
  signal?: AbortSignal;
  /** `uploaded` rejects with TIMEOUT after this many ms. Default 120 000. */
  uploadTimeoutMs?: number;
}

export interface PublishedOnion {
  /** 56 base32 characters, no ".onion". */
  serviceId: string;
  /**
   * Resolves on the first descriptor upload; rejects (TorError TIMEOUT / ABORTED, or the control
   * connection's TorSocketError). Already marked handled: ignoring it is safe.
   */
  uploaded: Promise<void>;
}

export async function publishOnion(control: TorControl, opts: PublishOnionOptions): Promise<PublishedOnion> {
  if (opts.signal?.aborted) throw new TorError('ABORTED', 'publish aborted');
  const uploadedIds = new Set<string>();
  const early = (ev: HsDescEvent) => {
    if (ev.action === 'UPLOADED') uploadedIds.add(ev.address);
  };
  control.on('hsDesc', early);
  let serviceId: string;
  try {
    await control.addEvents(['HS_DESC']);
    if (opts.serviceDir !== undefined) serviceId = await configureService(control, opts, opts.serviceDir);
    else {
      const addOpts: Parameters<TorControl['addOnion']>[0] = { keyBlob: opts.keyBlob, ports: [{ virtPort: opts.virtPort ?? 80, target: opts.target }], pow: opts.pow ?? false };
      if (opts.maxStreams !== undefined) addOpts.maxStreams = opts.maxStreams;
      if (opts.maxStreamsCloseCircuit) addOpts.maxStreamsCloseCircuit = true;
      ({ serviceId } = await control.addOnion(addOpts));
    }
  } catch (err) {
    control.off('hsDesc', early);
    throw err;
  }
  const expected = opts.expectedServiceId?.toLowerCase().replace(/\.onion$/, '');
  if (expected !== undefined && expected !== serviceId) {
    control.off('hsDesc', early);
    // Best effort: the mismatch is the error to report.
    if (opts.serviceDir !== undefined) await control.resetConf(['HiddenServiceDir']).catch(() => undefined);
    else await control.delOnion(serviceId).catch(() => undefined);
    throw new TorError('ONION_MISMATCH', `tor published ${serviceId}.onion but the identity key implies ${expected}.onion`);
  }

  const uploadTimeoutMs = opts.uploadTimeoutMs ?? 120_000;
  const uploaded = new Promise<void>((resolve, reject) => {
    const finish = (err: Error | null) => {
      control.off('hsDesc', early);
      control.off('hsDesc', onDesc);
      control.off('close', onClose);
      opts.signal?.removeEventListener('abort', onAbort);
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    const onDesc = (ev: HsDescEvent) => {
      if (ev.action === 'UPLOADED' && ev.address === serviceId) finish(null);
    };
    const onClose = (err: Error | undefined) => finish(err ?? new TorError('ABORTED', 'control connection closed before the descriptor was uploaded'));
    const onAbort = () => finish(new TorError('ABORTED', 'aborted while waiting for the descriptor upload'));
    const timer = setTimeout(() => finish(new TorError('TIMEOUT', `no HS_DESC UPLOADED for ${serviceId} within ${uploadTimeoutMs} ms`)), uploadTimeoutMs);
    timer.unref();
    if (uploadedIds.has(serviceId)) return finish(null);
    if (control.closed) return onClose(undefined);
    control.on('hsDesc', onDesc);
    control.on('close', onClose);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
  uploaded.catch(() => {}); // callers may ignore `uploaded`; an ignored rejection must not crash the node
  return { serviceId, uploaded };
}

/** The configured route of publishOnion: key file in, SETCONF, key file out; returns the ServiceID. */
async function configureService(control: TorControl, opts: PublishOnionOptions, dir: string): Promise<string> {
  const m = /^ED25519-V3:([A-Za-z0-9+/]{86}==)$/.exec(opts.keyBlob);
  if (!m) throw new TorError('BAD_ARGUMENT', 'keyBlob must be ED25519-V3: and 88 base64 characters (64-byte expanded key)');
  if (!/^127\.0\.0\.1:[0-9]{1,5}$/.test(opts.target)) throw new TorError('BAD_ARGUMENT', `onion target must be 127.0.0.1:<port>, got ${JSON.stringify(opts.target)}`);
  const maxStreams = opts.maxStreams ?? 0;
  if (!Number.isInteger(maxStreams) || maxStreams < 0 || maxStreams > 65535) throw new TorError('BAD_ARGUMENT', 'maxStreams must be 0..65535');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  // Files of an earlier run (perhaps another key) must not be what tor reads.
  for (const f of ['hs_ed25519_secret_key', 'hs_ed25519_public_key', 'hostname']) await rm(join(dir, f), { force: true });
  const secretFile = join(dir, 'hs_ed25519_secret_key');
  const key = Buffer.from(m[1]!, 'base64');
  const file = Buffer.concat([Buffer.from(SECRET_KEY_HEADER, 'latin1'), key]);
  try {
    await writeFile(secretFile, file, { mode: 0o600 });
    // Option order matters: the per-service options follow the HiddenServiceDir they belong to.
    await control.setConf({
      HiddenServiceDir: dir,
      HiddenServicePort: `${opts.virtPort ?? 80} ${opts.target}`,
      HiddenServiceExportCircuitID: 'haproxy',
      HiddenServiceMaxStreams: String(maxStreams),
      HiddenServiceMaxStreamsCloseCircuit: opts.maxStreamsCloseCircuit ? '1' : '0',
      HiddenServiceEnableIntroDoSDefense: '1',
      ...(opts.pow ? { HiddenServicePoWDefensesEnabled: '1' } : {}),
    });
  } finally {
    key.fill(0);
    file.fill(0);
    await rm(secretFile, { force: true });
  }
  const hostname = (await readFile(join(dir, 'hostname'), 'utf8')).trim().toLowerCase();
  if (!/^[a-z2-7]{56}\.onion$/.test(hostname)) throw new TorProtocolError('tor wrote no valid hostname for the configured service');
  return hostname.slice(0, 56);
}

/** Removes a published onion (DEL_ONION). Established streams survive it (tor's behaviour). */
export async function unpublishOnion(control: TorControl, serviceId: string): Promise<void> {
  await control.delOnion(serviceId);
}
