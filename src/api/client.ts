/**
 * The CLI's side of the local API: finds the running node through `<dataDir>/api.json` and the
 * token in `<dataDir>/api-token`, and calls methods over HTTP.
 *
 * node:http rather than fetch: a CLI call is one request on a fresh connection, and fetch would
 * load undici (over 100 ms) and keep the connection alive past the answer, delaying the exit.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { ApiError, RemoteError } from './errors.js';

/** Written by a running node; removed when it stops. */
export interface ApiEndpointFile {
  url: string;
  pid: number;
}

export const API_ENDPOINT_FILE = 'api.json';
export const API_TOKEN_FILE = 'api-token';

export interface ApiClient {
  readonly url: string;
  call<T = unknown>(method: string, params?: Record<string, unknown>, opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<T>;
}

export function apiClient(url: string, token: string): ApiClient {
  let seq = 0;
  return {
    url,
    async call<T>(method: string, params: Record<string, unknown> = {}, o: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<T> {
      const signal = o.signal ?? AbortSignal.timeout(o.timeoutMs ?? 60_000);
      const payload = JSON.stringify({ jsonrpc: '2.0', id: ++seq, method, params });
      let res: { status: number; text: string };
      try {
        res = await new Promise((resolve, reject) => {
          const req = request(`${url}/rpc`, {
            method: 'POST', agent: false, signal,
            headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization: `Bearer ${token}` },
          }, (r) => {
            const chunks: Buffer[] = [];
            r.on('data', (c: Buffer) => chunks.push(c));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
            r.on('error', reject);
          });
          req.on('error', reject);
          req.end(payload);
        });
      } catch (err) {
        throw new ApiError('NODE_NOT_RUNNING', `cannot reach the node's API at ${url} (is \`onionpost start\` running?)`, { cause: err });
      }
      type Answer = { result?: T; error?: { code: number; message: string; data?: { code?: string } } };
      let body: Answer | null;
      try {
        body = JSON.parse(res.text) as Answer | null;
      } catch {
        body = null;
      }
      if (!body) throw new ApiError('INTERNAL', `the node answered HTTP ${res.status} without a JSON body`);
      if (body.error) throw new RemoteError(body.error.data?.code ?? 'INTERNAL', body.error.message, body.error.code);
      return body.result as T;
    },
  };
}

/** The API client for the node running on `dataDir`, or NODE_NOT_RUNNING. */
export function connectToNode(dataDir: string): ApiClient {
  let endpoint: ApiEndpointFile;
  let token: string;
  try {
    endpoint = JSON.parse(readFileSync(join(dataDir, API_ENDPOINT_FILE), 'utf8')) as ApiEndpointFile;
    token = readFileSync(join(dataDir, API_TOKEN_FILE), 'utf8').trim();
  } catch (err) {
    throw new ApiError('NODE_NOT_RUNNING', `no node is running on ${dataDir} (start one with \`onionpost start\`)`, { cause: err });
  }
  try {
    process.kill(endpoint.pid, 0);
  } catch {
    throw new ApiError('NODE_NOT_RUNNING', `the node that ran on ${dataDir} (pid ${endpoint.pid}) is gone; start it with \`onionpost start\``);
  }
  return apiClient(endpoint.url, token);
}
