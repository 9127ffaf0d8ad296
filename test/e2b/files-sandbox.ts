/**
 * A sandbox for the files tests: a Warden session made through Warden's own
 * REST API, reached by the E2B SDK with the access token the adapter would
 * give at create (the test knows the token secret). The control API
 * (Sandbox.create) is tested on its own; these tests need only the sandbox
 * plane, so the SDK's Sandbox is built the way create() builds it.
 */
import { createHmac } from "node:crypto";
import type { E2bWarden } from "./sdk.js";

export const TOKEN_SECRET = "files-test-secret-0123456789abcdef0123456789";

export interface TestSandbox {
  sessionId: string;
  e2bId: string;
  token: string;
  /** Env for runScript: the script's `sbx` is this sandbox. */
  env: Record<string, string>;
}

export async function openSandbox(w: E2bWarden): Promise<TestSandbox> {
  const res = await w.server.request("POST", "/v1/sessions", { body: {}, token: w.apiKey });
  if (res.status !== 201) throw new Error(`session: ${res.status} ${await res.text()}`);
  const sessionId = ((await res.json()) as { id: string }).id;
  const e2bId = sessionId.slice("sess_".length).toLowerCase();
  const token = createHmac("sha256", TOKEN_SECRET).update(sessionId).digest("base64url");
  return { sessionId, e2bId, token, env: { SBX_ID: e2bId, SBX_TOKEN: token } };
}

/** What each script starts with: the SDK, and `sbx` on the test's sandbox. */
export const PRELUDE = `
import { Sandbox, FileNotFoundError, InvalidArgumentError, SandboxError } from "e2b";
const sbx = new Sandbox({
  sandboxId: process.env.SBX_ID,
  envdAccessToken: process.env.SBX_TOKEN,
  envdVersion: "0.6.4",
});
const out = {};
const errorOf = async (p) => {
  try {
    await p;
    return null;
  } catch (e) {
    return { name: e.constructor.name, message: String(e.message) };
  }
};
`;

/** Ends a script: prints what it found as its last line. */
export const PRINT = `console.log(JSON.stringify(out));`;
