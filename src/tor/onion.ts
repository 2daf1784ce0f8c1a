/**
 * Publishing the node's onion service on an owned control connection.
 *
 *   publishOnion: SETEVENTS (+HS_DESC) → ADD_ONION <key> Port=virt,target → check ServiceID
 *                 → `uploaded` resolves on the first `650 HS_DESC UPLOADED <serviceId> …`
 *
 * The service is not detached: it lives as long as the control connection that added it (for a
 * TorProcess, as long as tor itself). Whoever owns the TorProcess keeps `control` open while the
 * node is online, and re-publishes with the same key after restarting tor (same ServiceID).
 * An HS_DESC UPLOADED means one HSDir has the descriptor; it does not prove reachability: check that
 * with socksConnect to the onion through the same or another tor.
 */
import type { TorControl, HsDescEvent } from './control.js';
import { TorError } from './errors.js';

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
    const addOpts: Parameters<TorControl['addOnion']>[0] = { keyBlob: opts.keyBlob, ports: [{ virtPort: opts.virtPort ?? 80, target: opts.target }], pow: opts.pow ?? false };
    if (opts.maxStreams !== undefined) addOpts.maxStreams = opts.maxStreams;
    ({ serviceId } = await control.addOnion(addOpts));
  } catch (err) {
    control.off('hsDesc', early);
    throw err;
  }
  const expected = opts.expectedServiceId?.toLowerCase().replace(/\.onion$/, '');
  if (expected !== undefined && expected !== serviceId) {
    control.off('hsDesc', early);
    await control.delOnion(serviceId).catch(() => undefined); // best effort: the mismatch is the error to report
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

/** Removes a published onion (DEL_ONION). Established streams survive it (tor's behaviour). */
export async function unpublishOnion(control: TorControl, serviceId: string): Promise<void> {
  await control.delOnion(serviceId);
}
