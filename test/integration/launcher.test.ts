/**
 * Real sandboxes started through warden-launch: same results as Node's spawn,
 * a launcher killed mid-run fails that run (no hang) and the next one works,
 * and a Warden killed outright takes its launcher and sandboxes with it.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { limits, processesOfUid, runCode, testHost } from "../helpers/sandbox.js";
import { loadConfig } from "../../src/config/load.js";
import { SandboxHost } from "../../src/sandbox/host.js";
import { parentPid } from "../../src/sandbox/owner.js";

/** Pids of live processes whose executable is warden-launch and whose parent is `ppid`. */
function launchersOf(ppid: number): number[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      try {
        return (
          readlinkSync(`/proc/${pid}/exe`).endsWith("/warden-launch") && parentPid(pid) === ppid
        );
      } catch {
        return false;
      }
    });
}

/** The launcher of a Warden (by its socket's owner tag), or with `keeper` its keep-warm child too. */
function launcherCmdlines(tag: string, keeper = false): number[] {
  return readdirSync("/proc")
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((pid) => {
      try {
        if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`/launcher/${tag}`))
          return false;
        return keeper || readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "warden-keeper";
      } catch {
        return false;
      }
    });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !check(); await sleep(50))
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
}

describe("sandboxes started by warden-launch", () => {
  it("runs through the launcher: warden-exec is its child, not Warden's", async () => {
    const host = await testHost();
    const box = await host.prepare({ diskMb: 4 });
    try {
      const run = box.run({ argv: ["/bin/sleep", "1"], limits: limits() });
      let helper: number | undefined;
      await until(() => {
        const [launcher] = launchersOf(process.pid);
        helper = readdirSync("/proc")
          .filter((e) => /^\d+$/.test(e))
          .map(Number)
          .find((p) => {
            try {
              return (
                parentPid(p) === launcher &&
                readFileSync(`/proc/${p}/cmdline`, "utf8").includes(box.id)
              );
            } catch {
              return false;
            }
          });
        return helper !== undefined;
      }, "warden-exec under the launcher");
      expect((await run).status).toBe("completed");
    } finally {
      await box.destroy();
    }
  });

  it("gives the same exit codes, signals, output, stdin and caps as before", async () => {
    expect(await runCode("bash", "echo out; echo err >&2; exit 7")).toMatchObject({
      status: "failed",
      exitCode: 7,
      stdout: "out\n",
      stderr: "err\n",
    });
    expect(await runCode("bash", "kill -SEGV $$")).toMatchObject({
      status: "failed",
      signal: "SIGSEGV",
    });
    // 2 MiB of stdin, through the program and back: EOF reaches it, nothing is lost.
    const input = Buffer.alloc(2 << 20, "abcdefghij\n").toString();
    const echoed = await runCode("bash", "cat; echo done >&2", {
      stdin: input,
      limits: { outputBytes: 4 << 20 },
    });
    expect(echoed.stderr).toBe("done\n");
    const digest = (s: string): string => createHash("sha256").update(s).digest("hex");
    expect(digest(echoed.stdout)).toBe(digest(input));
    const capped = await runCode("bash", "yes", { limits: { outputBytes: 4096 } });
    expect(capped.status).toBe("output_limit");
    expect(capped.stdout.length).toBeLessThanOrEqual(4096);
    const slow = await runCode("bash", "exec sleep 60", { limits: { timeoutMs: 300 } });
    expect(slow).toMatchObject({ status: "timeout", signal: "SIGTERM" });
  });

  it("fails the run as an error when the launcher dies mid-run, then starts a new one", async () => {
    const host = await testHost();
    const box = await host.prepare({ diskMb: 4 });
    const started = new Promise<void>((resolve) => {
      void box
        .run({
          argv: ["/bin/sh", "-c", "echo up; exec sleep 60"],
          limits: limits(),
          onOutput: () => resolve(),
        })
        .then((r) => (result = r));
    });
    let result: Awaited<ReturnType<typeof box.run>> | undefined;
    try {
      await started;
      const [launcher] = launchersOf(process.pid);
      expect(launcher).toBeDefined();
      process.kill(launcher!, "SIGKILL");
      await until(() => result !== undefined, "the run to end");
      expect(result).toMatchObject({ status: "error" });
      // The launcher's end reaches the helper (PR_SET_PDEATHSIG), which ends the sandbox and
      // reports that; whichever word comes first, the run ends as Warden's own error.
      expect(result?.errorMessage).toMatch(
        /sandbox launcher exited \(signal SIGKILL\)|sandbox exited with status 9/,
      );
      await until(() => processesOfUid(box.uid).length === 0, "the sandbox to be gone");
    } finally {
      await box.destroy();
    }
    const next = await runCode("bash", "echo again");
    expect(next).toMatchObject({ status: "completed", stdout: "again\n" });
    expect(launchersOf(process.pid)).toHaveLength(1);
  });

  it("dies with a SIGKILLed Warden and takes its sandboxes along", async () => {
    const env = {
      ...process.env,
      WARDEN_RUN_DIR: "/run/warden-launcher-test",
      WARDEN_CGROUP_PARENT: "warden-launcher-test",
      WARDEN_UID_BASE: "770000",
      WARDEN_UID_COUNT: "100",
    };
    const child = spawn(
      process.execPath,
      [join(import.meta.dirname, "../fixtures/crash-mid-run.mjs")],
      {
        stdio: ["ignore", "pipe", "inherit"],
        env,
      },
    );
    const box = await new Promise<{ id: string; uid: number }>((resolve, reject) => {
      child.stdout.once("data", (d: Buffer) =>
        resolve(JSON.parse(d.toString().split("\n")[0]!) as { id: string; uid: number }),
      );
      child.on("error", reject);
    });
    const tag = box.id.split("-").slice(0, 2).join("-");
    try {
      expect(launcherCmdlines(tag)).toHaveLength(1);
      expect(processesOfUid(box.uid).length).toBeGreaterThan(0);
    } finally {
      child.kill("SIGKILL"); // also when a check fails: a live fixture would hold its sandboxes
    }
    await until(
      () => launcherCmdlines(tag, true).length === 0,
      "the launcher and its keep-warm child to exit",
    );
    await until(() => processesOfUid(box.uid).length === 0, "the sandbox to be gone");
    // The crashed Warden's cgroup, mount and lease are the janitor's, as ever.
    const config = loadConfig({ env });
    await (await SandboxHost.open({ config: config.sandbox, runDir: config.runDir })).close();
  });
});
