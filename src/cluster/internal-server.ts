/**
 * A worker's internal listener: the same route plugins as the public server
 * (buildServer in internal mode: sessions, their commands, state, files, SSE,
 * previews with WebSocket upgrades, MCP, notebooks, environments), acting for
 * the principal an API node signed, and refusing anything unsigned — a user
 * key included. It listens on `cluster.internalHost:internalPort` and tells
 * API nodes where it is through `advertiseUrl` (default: the bound address).
 */
import type { AddressInfo } from "node:net";
import { buildServer, type ServerDeps } from "../http/server.js";
import { MIN_SECRET_CHARS } from "./internal-auth.js";

export interface InternalServerOptions {
  /** `cluster.secret`: what API nodes sign with. */
  secret: string;
  /** @default "127.0.0.1" */
  host?: string;
  /** 0 = any free port. @default 0 */
  port?: number;
  /** How API nodes reach this listener; default `http://host:boundPort`. */
  advertiseUrl?: string | undefined;
}

export interface InternalServer {
  app: Awaited<ReturnType<typeof buildServer>>;
  /** What the worker writes in its `workers` row. */
  url: string;
  close(): Promise<void>;
}

export async function startInternalServer(
  deps: Omit<ServerDeps, "mode" | "routing">,
  o: InternalServerOptions,
): Promise<InternalServer> {
  if (o.secret.length < MIN_SECRET_CHARS)
    throw new Error(`cluster.secret: at least ${MIN_SECRET_CHARS} characters`);
  const app = await buildServer({ ...deps, mode: { kind: "internal", secret: o.secret } });
  const host = o.host ?? "127.0.0.1";
  await app.listen({ host, port: o.port ?? 0 });
  const { port } = app.server.address() as AddressInfo;
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    app,
    url: (o.advertiseUrl ?? `http://${shown}:${port}`).replace(/\/+$/, ""),
    close: () => app.close(),
  };
}
