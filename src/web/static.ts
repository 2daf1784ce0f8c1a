import { readFile, realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../log.js';

export type WebHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

export interface WebHandlerOptions {
  logger: Logger;
  /**
   * Directory to serve. Default: `web/` at the repo root, found relative to this module (compiled
   * to dist/src/web/, three levels below the root).
   */
  root?: string;
  /** Largest file served, bytes. Default 1 MiB (the UI is a few tens of KiB). */
  maxFileBytes?: number;
}

const CSP = [
  "default-src 'self'",
  "connect-src 'self' ws://127.0.0.1:* ws://localhost:*",
  "img-src 'self' data:",
  "style-src 'self'",
  "script-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

/** Sent with every response of the handler, errors included. */
export const WEB_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CSP,
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** Only these types are served; any other extension is treated as absent. */
const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.txt': 'text/plain; charset=utf-8',
};

const DEFAULT_ROOT = fileURLToPath(new URL('../../../web/', import.meta.url));

/** Paths served from a file of another name: the sign-in page the login link opens. */
const ROUTES: Readonly<Record<string, string>> = { '/login': '/login.html' };

/**
 * Maps a request path to a file path inside `root`, or null. Rejects encoded or literal `..`,
 * backslashes, NUL, and dot-files; the caller still checks the resolved real path.
 */
function toFilePath(root: string, pathname: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  if (decoded.endsWith('/')) decoded += 'index.html';
  const parts = decoded.split('/').filter((p) => p !== '');
  if (parts.some((p) => p.startsWith('.'))) return null;
  const file = resolve(root, ...parts);
  return file.startsWith(root + sep) ? file : null;
}

export function createWebHandler(opts: WebHandlerOptions): WebHandler {
  const log = opts.logger.child({ layer: 'web' });
  const root = resolve(opts.root ?? DEFAULT_ROOT);
  const maxBytes = opts.maxFileBytes ?? 1024 * 1024;

  /** The file's real path if it is a regular file inside the real root; symlinks out are refused. */
  async function locate(file: string): Promise<string | null> {
    try {
      const [real, base] = await Promise.all([realpath(file), realpath(root)]);
      if (!real.startsWith(base + sep)) return null;
      const st = await stat(real);
      return st.isFile() && st.size <= maxBytes ? real : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && (err as NodeJS.ErrnoException).code !== 'ENOTDIR') log.warn({ err }, 'web: cannot read file');
      return null;
    }
  }

  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const file = toFilePath(root, ROUTES[url.pathname] ?? url.pathname);
    const type = file ? TYPES[extname(file).toLowerCase()] : undefined;
    const real = file && type ? await locate(file) : null;
    if (!real || !type) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...WEB_SECURITY_HEADERS, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('GET or HEAD only\n');
      return true;
    }
    const body = await readFile(real);
    res.writeHead(200, {
      ...WEB_SECURITY_HEADERS,
      'content-type': type,
      'content-length': String(body.length),
      // Revalidate every time: the UI is tiny, local, and must never run stale after an upgrade.
      'cache-control': 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
