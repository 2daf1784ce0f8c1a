/** api/: the node's local JSON-RPC 2.0 API (server and client) and its schema. */
export { ApiError, RemoteError, type ApiErrorCode } from './errors.js';
export { createApiServer, type ApiEvent, type ApiServer, type ApiServerOptions, type EventSource, type Handler } from './server.js';
export { API_ENDPOINT_FILE, API_TOKEN_FILE, apiClient, connectToNode, type ApiClient, type ApiEndpointFile } from './client.js';
export {
  API_SUBPROTOCOL, SESSION_HEADER, SESSION_SUBPROTOCOL_PREFIX, createBrowserSessions, sessionCookieName,
  type BrowserSessions, type NewSession, type SessionCheck,
} from './sessions.js';
export { openRpcDocument, validate, type JsonSchema, type MethodSpec } from './schema.js';
export { API_METHODS, MESSAGE_STATES } from './methods.js';
export { contactView, createHandlers, HandlerError, recordView, summary, type HandlerDeps, type HandlerErrorCode } from './handlers.js';
export { deliveryLine, deliveryView, type DeliveryView } from './delivery.js';
