/**
 * Name lookups against the in-process dev chain (a deployed registry with one registered name).
 *
 *   npm run bench -- registry [--n 200] [--warmup 20]
 *
 *   uncached   resolveName(name, { fresh: true }): a `lookup(string)` call through tronweb's HTTP
 *              provider, ABI decoding, and the record's signature/field checks
 *   cached     resolveName(name) served from the client's TTL cache
 *   baseline   the same `wallet/triggerconstantcontract` POST (same body) sent with node:http over a
 *              keep-alive agent, answer parsed as JSON and nothing else; interleaved with the
 *              uncached samples so both see the same chain and the same load
 */
import http from 'node:http';
import { TronWeb } from 'tronweb';
import { startDevChain, type DevChain } from '../src/chain/index.js';
import { deployRegistry } from '../src/contract/index.js';
import { cryptoReady, generateIdentity } from '../src/crypto/index.js';
import { createTronRegistry, parseTronAddress, type IdentityRegistry } from '../src/registry/index.js';
import { calls } from '../src/registry/abi.js';
import { ANONYMOUS_CALLER } from '../src/registry/tron.js';
import { numArg } from './args.js';
import { machineLabel, percentile, report, round } from './stats.js';

function rawCall(agent: http.Agent, url: URL, body: string): Promise<{ constant_result?: string[] }> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      agent, host: url.hostname, port: url.port, path: '/wallet/triggerconstantcontract', method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as { constant_result?: string[] });
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error('raw call timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

export async function run(args: string[]): Promise<void> {
  const n = numArg(args, 'n', 200);
  const warmup = numArg(args, 'warmup', 20);
  await cryptoReady();
  let chain: DevChain | undefined;
  let reader: IdentityRegistry | undefined;
  let writer: IdentityRegistry | undefined;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  try {
    chain = await startDevChain({ port: 0, accounts: 3 });
    const tronWeb = new TronWeb({ fullHost: chain.url, privateKey: chain.accounts[0]!.privateKey });
    const deployed = await deployRegistry({ tronWeb, minCommitmentAge: 0, maxCommitmentAge: 86_400, timeoutMs: 10_000, pollIntervalMs: 20 });
    writer = createTronRegistry({ fullHost: chain.url, contractAddress: deployed.address, tronPrivateKey: chain.accounts[1]!.privateKey, pollIntervalMs: 20 });
    const name = 'alice';
    await writer.register(generateIdentity(), name);
    reader = createTronRegistry({ fullHost: chain.url, contractAddress: deployed.address });

    const call = calls.lookup(name);
    const body = JSON.stringify({
      contract_address: parseTronAddress(deployed.address)!.hex, owner_address: ANONYMOUS_CALLER,
      function_selector: call.selector, parameter: call.parameter, call_value: 0,
    });
    const url = new URL(chain.url);
    const check = await rawCall(agent, url, body);
    if (typeof check.constant_result?.[0] !== 'string') throw new Error('raw triggerconstantcontract returned no result');
    if (!(await reader.resolveName(name, { fresh: true }))) throw new Error(`${name} did not resolve`);

    const uncached: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i < warmup + n; i++) {
      let t = performance.now();
      await reader.resolveName(name, { fresh: true });
      const u = performance.now() - t;
      t = performance.now();
      await rawCall(agent, url, body);
      const r = performance.now() - t;
      if (i >= warmup) {
        uncached.push(u);
        raw.push(r);
      }
    }
    const cached: number[] = [];
    await reader.resolveName(name);
    for (let i = 0; i < warmup + n; i++) {
      const t = performance.now();
      await reader.resolveName(name);
      if (i >= warmup) cached.push((performance.now() - t) * 1000);
    }

    const up50 = percentile(uncached, 50);
    const rp50 = percentile(raw, 50);
    const machine = `in-process dev chain on 127.0.0.1; ${machineLabel()}`;
    report(
      [
        `registry: resolveName("${name}") against the dev chain (deployed registry, one registered name), ${n} samples after ${warmup} warm-up`,
        `  uncached (fresh)        p50 ${round(up50)} ms   p99 ${round(percentile(uncached, 99))} ms`,
        `  cached                  p50 ${round(percentile(cached, 50))} µs   p99 ${round(percentile(cached, 99))} µs`,
        `  raw triggerconstantcontract POST   p50 ${round(rp50)} ms   p99 ${round(percentile(raw, 99))} ms`,
        `  ratio uncached / raw    ${round(up50 / rp50, 3)}× (p50)`,
        `  machine                 ${machine}`,
      ],
      {
        bench: 'registry', uncached_p50_ms: round(up50), uncached_p99_ms: round(percentile(uncached, 99)), cached_p50_us: round(percentile(cached, 50)),
        cached_p99_us: round(percentile(cached, 99)), raw_call_p50_ms: round(rp50), raw_call_p99_ms: round(percentile(raw, 99)), ratio: round(up50 / rp50, 3), n, machine,
      },
    );
  } finally {
    reader?.close();
    writer?.close();
    agent.destroy();
    await chain?.close();
  }
}
