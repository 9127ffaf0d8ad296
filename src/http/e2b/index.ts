/**
 * E2B's SDKs against Warden (docs/e2b.md). With `E2B_API_URL` and
 * `E2B_SANDBOX_URL` both set to `http://HOST:PORT/e2b`, every request the SDKs
 * make lands under this prefix: the control API (`/v2/sandboxes`…, keyed by
 * `X-API-KEY`), envd's Connect services and `/files` (E2b-Sandbox-Port 49983),
 * and the code interpreter's `/execute` and `/contexts` (49999), the last two
 * keyed by the sandbox's access token. All of it translates to the session
 * manager: there is no second session implementation here.
 */
import type { FastifyPluginAsync } from "fastify";
import { apiRoutes } from "./api.js";
import { acceptConnectStreams } from "./connect.js";
import { filesystemService } from "./filesystem.js";
import { filesRoutes } from "./files-http.js";
import { interpreterRoutes } from "./interpreter.js";
import type { E2bDeps } from "./plane.js";
import { processService } from "./process.js";

export const e2bRoutes: FastifyPluginAsync<E2bDeps> = async (app, deps) => {
  acceptConnectStreams(app);
  await apiRoutes(app, deps);
  processService(app, deps);
  filesystemService(app, deps);
  await filesRoutes(app, deps);
  await interpreterRoutes(app, deps);
  // Anything else the SDK may call (snapshots, volumes, templates...) is a gap, said so.
  app.setNotFoundHandler((request, reply) => {
    const path = (request.raw.url ?? "").split("?")[0]!.slice(0, 200);
    return reply.status(501).send({
      code: 501,
      message: `${request.method} ${path} is not supported by Warden's E2B adapter (docs/e2b.md lists what is)`,
    });
  });
};
