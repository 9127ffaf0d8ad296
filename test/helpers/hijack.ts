/**
 * Taking over a session's agent, as code in the session can: a program that
 * finds the agent's process and runs a script inside it
 * (test/attacks/programs/hijack-agent.cjs). Attack tests then speak for the
 * agent and check that Warden, not the agent, holds every bound.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { SessionManager } from "../../src/sessions/manager.js";

const HIJACK = readFileSync(
  join(import.meta.dirname, "..", "attacks", "programs", "hijack-agent.cjs"),
);

/**
 * A session of `userId` whose agent will run `script` (JavaScript, inside
 * the agent) when `attack` is called; its box, to check nothing is left.
 */
export async function hijackedSession(
  manager: SessionManager,
  userId: string,
  script: string,
  options: Parameters<SessionManager["create"]>[1] = {},
) {
  const s = await manager.create(userId, options);
  await manager.writeFile(s.id, userId, "hijack.cjs", HIJACK);
  await manager.writeFile(s.id, userId, "script.js", Buffer.from(script));
  const attack = () => manager.command(s.id, userId, { command: "node hijack.cjs script.js" });
  const live = (
    manager as unknown as {
      sessions: Map<string, { sandbox: { box: { id: string; uid: number } } }>;
    }
  ).sessions.get(s.id)!;
  return { id: s.id, attack, box: { id: live.sandbox.box.id, uid: live.sandbox.box.uid } };
}

/**
 * Script: answer the next request that `match`es (a JS condition on `req`)
 * with `answer` (JS statements; `id` and `write(object)` in scope). With
 * `alone`, the agent's own reader goes, so only the forged answer reaches Warden.
 */
export function answerNext(match: string, answer: string, alone = false): string {
  return `
    const write = (o) => process.stdout.write(JSON.stringify(o) + "\\n");
    let done = false;
    ${alone ? 'process.stdin.removeAllListeners("data");' : ""}
    process.stdin.prependListener("data", (d) => {
      for (const line of String(d).split("\\n")) {
        let req; try { req = JSON.parse(line); } catch { continue; }
        if (done || !(${match})) continue;
        done = true;
        const id = req.id;
        ${answer}
      }
    });`;
}
