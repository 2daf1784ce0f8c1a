/**
 * The CLI's side of the local API: finds the running node through `<dataDir>/api.json` and the
 * token in `<dataDir>/api-token`, and calls methods over HTTP.
 */
import { readFileSync } from 'node:fs';
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
      let res: Response;
      try {
        res = await fetch(`${url}/rpc`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ jsonrpc: '2.0', id: ++seq, method, params }),
          signal,
        });
      } catch (err) {
        throw new ApiError('NODE_NOT_RUNNING', `cannot reach the node's API at ${url} (is \`onionpost start\` running?)`, { cause: err });
      }
      const body = (await res.json().catch(() => null)) as { result?: T; error?: { code: number; message: string; data?: { code?: string } } } | null;
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
