/**
 * The dev chain's HTTP face: the subset of java-tron's HTTP API that tronweb 6 uses (GET with query
 * or POST with a JSON body, addresses as 41-hex, `visible:false` answers), TronGrid's `/v1` event
 * reads, and admin routes to drive the chain from another process:
 *
 *   POST /admin/snapshot                 -> {id}
 *   POST /admin/revert       {id}        -> {reverted: true} | 400 {error, code}
 *   POST /admin/increaseTime {seconds}   -> {blockNumber, timestamp}   (mines an empty block)
 *   POST /admin/mine                     -> {blockNumber, timestamp}
 *   GET  /admin/accounts                 -> {accounts: [{address, hexAddress}]}   (no private keys)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { BlockRecord, Chain, TriggerRequest } from './chain.js';
import { ChainError } from './errors.js';
import { queryEvents } from './events.js';
import { toBase58, toHex41 } from './tron.js';
import type { DevAccount } from './accounts.js';

/** Largest request body accepted, bytes (a deploy carries the bytecode and ABI). */
const MAX_BODY = 4 * 1024 * 1024;
const NODE_VERSION = '4.8.0';

type Params = Record<string, unknown>;
type Handler = (p: Params, url: URL) => Promise<unknown> | unknown;

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export function createHttpServer(chain: Chain, accounts: readonly DevAccount[], log: Logger): Server {
  const blockJson = (b: BlockRecord, detail: boolean) => {
    const out: Record<string, unknown> = {
      blockID: b.blockID,
      block_header: {
        raw_data: {
          number: b.number,
          txTrieRoot: '0'.repeat(64),
          witness_address: '41' + '0'.repeat(40),
          parentHash: b.parentHash,
          version: 30,
          timestamp: b.timestamp,
        },
        witness_signature: '',
      },
    };
    if (detail && b.txIDs.length > 0) out.transactions = b.txIDs.map((id) => txJson(id)).filter((t) => t !== undefined);
    return out;
  };
  const txJson = (id: string) => {
    const t = chain.tx(id);
    if (!t) return undefined;
    return { ret: [{ contractRet: t.info.receipt.result ?? 'SUCCESS' }], ...t.tx };
  };
  const num = (v: unknown): number | undefined => {
    const n = typeof v === 'string' && v !== '' ? Number(v) : typeof v === 'number' ? v : undefined;
    return n !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  };
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const bool = (v: unknown): boolean => v === true || v === 'true';
  const accountJson = async (addr: unknown) => {
    const hex = toHex41(String(addr ?? ''));
    if (!hex || !(await chain.accountExists(hex))) return {};
    const balance = await chain.balance(hex);
    const out: Record<string, unknown> = { address: hex, create_time: chain.block(0)!.timestamp };
    if (balance > 0n) out.balance = Number(balance);
    if (chain.contract(hex)) out.type = 'Contract';
    return out;
  };
  const getBlock = (p: Params) => {
    const idOrNum = str(p.id_or_num) ?? (typeof p.id_or_num === 'number' ? String(p.id_or_num) : undefined);
    const detail = p.detail === undefined ? true : bool(p.detail);
    if (idOrNum === undefined) return blockJson(chain.head(), detail);
    const b = /^\d+$/.test(idOrNum) ? chain.block(Number(idOrNum)) : chain.blockById(idOrNum);
    return b ? blockJson(b, detail) : {};
  };
  const contractJson = (p: Params) => {
    const hex = toHex41(String(p.value ?? ''));
    const c = hex ? chain.contract(hex) : undefined;
    return c ? { ...c } : {};
  };

  const wallet: Record<string, Handler> = {
    getnowblock: () => blockJson(chain.head(), true),
    getblock: getBlock,
    getblockbynum: (p) => {
      const n = num(p.num);
      const b = n === undefined ? undefined : chain.block(n);
      return b ? blockJson(b, true) : {};
    },
    getblockbyid: (p) => {
      const b = chain.blockById(String(p.value ?? ''));
      return b ? blockJson(b, true) : {};
    },
    getblockbylatestnum: (p) => {
      const n = Math.min(num(p.num) ?? 1, 100);
      const head = chain.head().number;
      const blocks = [];
      for (let i = Math.max(0, head - n + 1); i <= head; i++) blocks.push(blockJson(chain.block(i)!, true));
      return { block: blocks };
    },
    getaccount: (p) => accountJson(p.address),
    getaccountresource: () => ({ freeNetLimit: 600, TotalNetLimit: 43_200_000_000, TotalEnergyLimit: 90_000_000_000 }),
    broadcasttransaction: (p) => chain.broadcast(p),
    triggersmartcontract: (p) => chain.buildTrigger(p as TriggerRequest),
    triggerconstantcontract: (p) => chain.constantCall(p as TriggerRequest),
    estimateenergy: (p) => chain.estimateEnergy(p as TriggerRequest),
    getcontract: contractJson,
    getcontractinfo: async (p) => {
      const c = contractJson(p);
      if (!('contract_address' in c)) return { Error: 'Contract does not exist' };
      return { smart_contract: c, runtimecode: await chain.code(String(c.contract_address)), contract_state: { energy_usage: 0, energy_factor: 0, update_cycle: 0 } };
    },
    gettransactionbyid: (p) => txJson(String(p.value ?? '')) ?? {},
    gettransactioninfobyid: (p) => chain.tx(String(p.value ?? ''))?.info ?? {},
    gettransactioninfobyblocknum: (p) => {
      const n = num(p.num);
      const b = n === undefined ? undefined : chain.block(n);
      return b ? b.txIDs.map((id) => chain.tx(id)?.info).filter((i) => i !== undefined) : [];
    },
    getnodeinfo: () => ({
      beginSyncNum: 0,
      block: `Num:${chain.head().number},ID:${chain.head().blockID}`,
      solidityBlock: `Num:${chain.head().number},ID:${chain.head().blockID}`,
      currentConnectCount: 0,
      activeConnectCount: 0,
      passiveConnectCount: 0,
      configNodeInfo: { codeVersion: NODE_VERSION, versionNum: '0', p2pVersion: 'onionpost-dev' },
      machineInfo: {},
    }),
    getchainparameters: () => ({
      chainParameter: [
        { key: 'getEnergyFee', value: chain.params.energyFee },
        { key: 'getMaxFeeLimit', value: chain.params.maxFeeLimit },
        { key: 'getTransactionFee', value: 1000 },
        { key: 'getCreateAccountFee', value: 100_000 },
        { key: 'getAllowTvmCancun', value: 1 },
      ],
    }),
  };
  // Everything is confirmed at once on the dev chain, so the solidity node mirrors the full node.
  const solidity: Record<string, Handler> = {};
  for (const name of ['getnowblock', 'getblock', 'getblockbynum', 'getblockbyid', 'getaccount', 'gettransactionbyid', 'gettransactioninfobyid', 'gettransactioninfobyblocknum', 'triggerconstantcontract', 'getnodeinfo']) {
    solidity[name] = wallet[name]!;
  }

  const admin: Record<string, Handler> = {
    snapshot: async () => ({ id: await chain.snapshot() }),
    revert: async (p) => {
      const id = num(p.id);
      if (id === undefined) throw new HttpError(400, 'id required');
      await chain.revert(id);
      return { reverted: true };
    },
    increaseTime: async (p) => {
      const s = typeof p.seconds === 'number' ? p.seconds : Number(p.seconds);
      const b = await chain.increaseTime(s);
      return { blockNumber: b.number, timestamp: b.timestamp };
    },
    mine: async () => {
      const b = await chain.mine();
      return { blockNumber: b.number, timestamp: b.timestamp };
    },
    accounts: () => ({ accounts: accounts.map((a) => ({ address: a.address, hexAddress: a.hexAddress })) }),
  };

  const events = (p: Params, url: URL, filter: { contractAddress?: string; transactionId?: string; blockNumber?: number }) =>
    queryEvents(
      chain.events(),
      {
        ...filter,
        eventName: str(p.event_name),
        blockNumber: filter.blockNumber ?? num(p.block_number),
        minBlockTimestamp: num(p.min_block_timestamp),
        maxBlockTimestamp: num(p.max_block_timestamp),
        orderBy: str(p.order_by),
        limit: num(p.limit),
        fingerprint: str(p.fingerprint),
      },
      chain.now(),
      (fp) => {
        const next = new URL(url.href);
        next.searchParams.set('fingerprint', fp);
        return next.href;
      },
    );

  const route = (path: string): Handler | undefined => {
    const parts = path.split('/').filter((s) => s !== '');
    const [a, b, c, d] = parts;
    if (parts.length === 2 && a === 'wallet' && b) return Object.hasOwn(wallet, b) ? wallet[b] : undefined;
    if (parts.length === 2 && a === 'walletsolidity' && b) return Object.hasOwn(solidity, b) ? solidity[b] : undefined;
    if (parts.length === 2 && a === 'admin' && b) return Object.hasOwn(admin, b) ? admin[b] : undefined;
    if (parts.length === 1 && a === 'healthcheck') return () => ({ status: 'ok' });
    if (parts.length === 4 && a === 'v1' && d === 'events' && c) {
      if (b === 'contracts') {
        const hex = toHex41(c);
        return (p, url) => (hex ? events(p, url, { contractAddress: toBase58(hex) }) : { success: false, error: 'invalid address' });
      }
      if (b === 'transactions') return (p, url) => events(p, url, { transactionId: c.toLowerCase() });
      if (b === 'blocks') {
        return (p, url) => events(p, url, { blockNumber: c === 'latest' ? chain.head().number : (num(c) ?? -1) });
      }
    }
    return undefined;
  };

  const readBody = (req: IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) {
          reject(new HttpError(413, 'body too large'));
          req.destroy();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const send = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v));
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://dev.chain');
    const handler = route(url.pathname);
    if (!handler) throw new HttpError(404, `no route ${url.pathname}`);
    const params: Params = Object.fromEntries(url.searchParams);
    if (req.method === 'POST') {
      const text = await readBody(req);
      if (text.trim() !== '') {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          throw new HttpError(400, 'body is not JSON');
        }
        if (body && typeof body === 'object' && !Array.isArray(body)) Object.assign(params, body);
      }
    } else if (req.method !== 'GET') {
      throw new HttpError(405, 'GET or POST');
    }
    const started = performance.now();
    const out = await handler(params, url);
    log.trace({ path: url.pathname, ms: +(performance.now() - started).toFixed(2) }, 'request');
    send(res, 200, out);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) return send(res, err.status, { Error: err.message });
      if (err instanceof ChainError) return send(res, 400, { Error: err.message, code: err.code });
      log.error({ err, path: req.url }, 'dev chain request failed');
      send(res, 500, { Error: err instanceof Error ? err.message : String(err) });
    });
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  return server;
}
