/** The web UI handler, when this build has one (src/web); the node serves it beside the API. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';

export type WebHandler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

export async function loadWebHandler(logger: Logger): Promise<WebHandler | undefined> {
  const webModule = '../web/index.js';
  try {
    const mod = (await import(webModule)) as { createWebHandler?: (o: { logger: Logger }) => WebHandler };
    return mod.createWebHandler?.({ logger });
  } catch {
    return undefined;
  }
}
