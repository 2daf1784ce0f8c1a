/**
 * The web UI's server side: a request handler for the API server's `web` hook that serves the
 * static single-page app in `web/` (repo root). The app itself talks only to the JSON-RPC API
 * (/rpc, /ws) with a browser session (src/api/sessions.ts); nothing here needs or sees the token.
 *
 *   GET|HEAD /             web/index.html
 *   GET|HEAD /login        web/login.html, the sign-in page the login link opens
 *   GET|HEAD /<file>       web/<file>, if it exists, has a known type and is inside web/
 *   other methods          405
 *   anything else          false (the API server answers 404)
 *
 * Every response carries a strict Content-Security-Policy (scripts and styles from this origin
 * only, WebSocket only to loopback, no framing), X-Frame-Options, Referrer-Policy and nosniff.
 */
export { createWebHandler, WEB_SECURITY_HEADERS, type WebHandler, type WebHandlerOptions } from './static.js';
