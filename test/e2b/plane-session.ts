/**
 * A sandbox for the sandbox-plane tests, made through Warden's own REST API
 * (the control API of the adapter is tested on its own), with the access
 * token the adapter would hand out: the HMAC of the session id under the
 * secret this Warden keeps in its data dir. Scripts build the SDK's Sandbox
 * from it with the fields a create answer carries.
 */
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { E2bWarden } from "./sdk.js";

export interface PlaneSandbox {
  sessionId: string;
  e2bId: string;
  token: string;
  /** The lines a script starts with: imports and `sbx`, a connected Sandbox. */
  prelude: string;
}

export async function planeSandbox(w: E2bWarden, key = w.apiKey): Promise<PlaneSandbox> {
  const res = await w.server.request("POST", "/v1/sessions", {
    token: key,
    body: { language: "python", timeout: 600 },
  });
  const body = (await res.json()) as { id: string };
  if (res.status !== 201) throw new Error(`session: ${res.status} ${JSON.stringify(body)}`);
  const secret = readFileSync(join(w.server.dataDir, "e2b-token-secret"), "utf8").trim();
  const token = createHmac("sha256", secret).update(body.id).digest("base64url");
  const e2bId = body.id.slice("sess_".length).toLowerCase();
  const prelude = `
import { Sandbox, CommandExitError } from "e2b";
const sbx = new Sandbox({ sandboxId: ${JSON.stringify(e2bId)}, envdAccessToken: ${JSON.stringify(token)}, trafficAccessToken: ${JSON.stringify(token)}, envdVersion: "0.6.4" });
const errorOf = async (p) => { try { await p; return null } catch (e) { return { name: e?.constructor?.name, message: String(e?.message), exitCode: e?.exitCode } } };
`;
  return { sessionId: body.id, e2bId, token, prelude };
}
