/**
 * A key whose static-analysis policy is block may not get through /e2b what
 * /v1/sessions/:id/run and /commands refuse it: the sandbox plane carries a
 * token, not a key, so the adapter records the creating key's policy. The
 * unmodified SDK is driven with a block-mode key: a hostile cell comes back
 * as a MaliciousCode error and leaves no mark, a raw command is refused, and
 * the same cell under an ordinary key still runs (the refusal is the policy's).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey } from "../helpers/server.js";
import { lastJson, runScript, startE2bWarden, type E2bWarden } from "./sdk.js";

let w: E2bWarden;
let blockKey: string;

beforeAll(async () => {
  w = await startE2bWarden();
  blockKey = await createKey(w.server, "e2b-block", "sessions", "e2b-block", undefined, "block");
}, 60_000);
afterAll(async () => w?.server.stop());

/** Leaves its mark, then runs a shell command: block mode refuses it (process-exec). */
const HOSTILE = "open('/workspace/pwned.txt', 'w').write('ran')\\nimport os\\nos.system('id')";

const SCRIPT = `
import { Sandbox } from "@e2b/code-interpreter";
const sbx = await Sandbox.create();
const out = {};
try {
  const ex = await sbx.runCode("${HOSTILE}");
  out.error = ex.error ? { name: ex.error.name, value: ex.error.value } : null;
  out.marked = await sbx.files.exists("/home/user/pwned.txt");
  try {
    await sbx.commands.run("id");
    out.command = "ran";
  } catch (e) {
    out.command = e.constructor.name + ": " + e.message;
  }
} finally {
  await sbx.kill();
}
console.log(JSON.stringify(out));
process.exit(0);
`;

describe("a block-mode key through the E2B adapter", () => {
  it("has a hostile cell refused and leaves no mark; raw commands are refused", async () => {
    const r = await runScript(w, SCRIPT, { env: { E2B_API_KEY: blockKey } });
    const out = lastJson<{
      error: { name: string; value: string } | null;
      marked: boolean;
      command: string;
    }>(r);
    expect(out.error?.name).toBe("MaliciousCode");
    expect(out.marked).toBe(false);
    expect(out.command).toMatch(/policy is block/);
    expect((await w.server.request("GET", "/healthz")).status).toBe(200);
  });

  it("while an ordinary key runs the same cell (the refusal is the key's policy)", async () => {
    const out = lastJson<{ error: unknown; marked: boolean; command: string }>(
      await runScript(w, SCRIPT),
    );
    expect(out.error).toBeNull();
    expect(out.marked).toBe(true);
    expect(out.command).toBe("ran");
  });
});
