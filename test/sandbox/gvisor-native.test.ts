/**
 * The native pieces of the gVisor tier on a real runsc: warden-exec --runsc
 * puts runsc and all of its processes in the box's cgroup and its workspace
 * tmpfs, warden-init --socket takes its request and reports over the host
 * socket as PID 1 of the container, and a killed helper takes everything
 * with it.
 */
import { readFileSync, statSync, writeFileSync, chownSync, readdirSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { encodeInitRequest } from "../../src/sandbox/init-request.js";
import {
  cmdline,
  parentOf,
  GvisorBox,
  NATIVE,
  unavailable,
  type BoxOptions,
  type Run,
} from "./gvisor-fixture.js";

const skip = unavailable();
const boxes: GvisorBox[] = [];
afterEach(async () => {
  await Promise.all(boxes.splice(0).map((b) => b.dispose()));
});

async function box(options: BoxOptions = {}): Promise<GvisorBox> {
  const b = await GvisorBox.create(options);
  boxes.push(b);
  return b;
}

const python = (code: string, argv: string[] = ["/usr/bin/python3", "-c", code]) =>
  encodeInitRequest({
    cwd: "/workspace",
    argv,
    env: { PATH: "/usr/bin:/bin" },
    rlimits: { nofile: 128 },
  });

/** Sends the request, then init's report (everything it writes until it closes). */
async function request(init: Socket, bytes: Buffer): Promise<string> {
  let report = "";
  init.on("data", (d: Buffer) => (report += d.toString()));
  const closed = new Promise<void>((r) => init.on("close", () => r()));
  init.end(bytes); // EOF of our write half ends the request
  await closed;
  return report;
}

/** The helper's pid of `runsc run` (its only child while it runs). */
function runscOf(run: Run, b: GvisorBox): number {
  const runsc = b.processes(run.helper.pid!).find((p) => parentOf(p) === run.helper.pid);
  if (!runsc) throw new Error("no runsc under the helper");
  return runsc;
}

async function finish(run: Run): Promise<string[]> {
  const control = await run.settled;
  (run.helper.stdio[3] as Socket).end(); // the holder lets go of the workspace
  await run.exited;
  return control;
}

describe.skipIf(skip !== null)(
  `warden-exec --runsc and warden-init --socket${skip ? ` (skipped: ${skip})` : ""}`,
  () => {
    it("runs the request as uid 1000 with runsc, gofer and Sentry in the box's cgroup", async () => {
      const b = await box();
      const run = await b.start();
      const init = await run.init;
      // Up to "ready", every host process of the container is in the cgroup.
      const runsc = runscOf(run, b);
      const processes = b.processes(runsc);
      const members = new Set(await b.cgroup.pids());
      expect(processes.filter((p) => !members.has(p))).toEqual([]);
      const names = processes.map((p) => cmdline(p)[0]);
      expect(names).toEqual(
        expect.arrayContaining(["/usr/bin/runsc", "runsc-gofer", "runsc-sandbox"]),
      );
      expect(members.has(run.helper.pid!)).toBe(false); // the holder stays outside
      // The helper stayed root for runsc: no uid drop, no Warden seccomp filter.
      const status = readFileSync(`/proc/${runsc}/status`, "utf8");
      expect(status).toMatch(/^Uid:\s+0\s/m);
      expect(status).toMatch(/^NoNewPrivs:\s+0/m);
      expect(readFileSync(`/proc/${runsc}/environ`, "utf8")).toBe("");

      const report = await request(
        init,
        python(
          "import os; print(1, os.getuid(), os.getgid()); open('/workspace/out','w').write('x'*5000)",
        ),
      );
      expect(report).toBe("exit 0\n");
      const control = await run.settled;
      expect(run.stdout()).toBe("1 1000 1000\n");
      expect(control[0]).toBe("R");
      expect(control.slice(-2)).toEqual(["H", "S 0"]);
      const usage = control
        .find((l) => l.startsWith("U "))!
        .split(" ")
        .map(Number);
      expect(usage[1]).toBeGreaterThanOrEqual(5000);
      // The file is on the helper's tmpfs (through its namespace), as uid 1000;
      // the host's own view of the box directory stays empty.
      const inNs = `/proc/${run.helper.pid}/root${b.boxDir}`;
      expect(statSync(join(inNs, "workspace/out")).uid).toBe(1000);
      expect(readdirSync(b.boxDir)).toEqual([]);
      const mount = readFileSync(`/proc/${run.helper.pid}/mountinfo`, "utf8")
        .split("\n")
        .find((l) => l.split(" ")[4] === b.boxDir);
      expect(mount).toMatch(/ tmpfs tmpfs .*size=16384k,nr_inodes=4096/);
      await finish(run);
      expect(b.runsc("list", "--quiet").trim()).toBe("");
    });

    it("a later run joins the holder's workspace (a compile step, then its program)", async () => {
      const b = await box();
      const first = await b.start();
      const write = python("open('/workspace/a.out', 'w').write('built')");
      expect(await request(await first.init, write)).toBe("exit 0\n");
      expect((await first.settled).slice(-2)).toEqual(["H", "S 0"]);
      // Same bundle and id: the first container is gone from runsc's root.
      const second = await b.start(first.helper.pid);
      const read = python("print(open('/workspace/a.out').read())");
      expect(await request(await second.init, read)).toBe("exit 0\n");
      const control = await finish(second);
      expect(second.stdout()).toBe("built\n");
      expect(control).not.toContain("R"); // it joined, it mounted nothing
      expect(control).not.toContain("H"); // only the first run holds the namespace
      await finish(first);
    });

    it("init is PID 1: a program's kill -9 -1 spares it, leftovers and daemons go", async () => {
      const b = await box();
      const run = await b.start();
      const report = await request(
        await run.init,
        python(
          [
            "import os, subprocess, time",
            "print(open('/proc/1/cmdline').read().split(chr(0))[:2], os.getppid(), flush=True)",
            "subprocess.Popen(['/bin/sleep', '300'])",
            "os.kill(-1, 9)",
            "time.sleep(0.2)",
            "print('survived', flush=True)",
            // A double-forked daemon in a new session: init must end it.
            "if os.fork() == 0:",
            "    os.setsid()",
            "    if os.fork() == 0: time.sleep(300)",
            "    os._exit(0)",
            "os.wait()",
          ].join("\n"),
        ),
      );
      expect(report).toBe("exit 0\n");
      expect(run.stdout()).toBe("['/.warden/init', '--socket'] 1\nsurvived\n");
      // runsc run ends with the container, so nothing of it is left.
      expect((await finish(run)).at(-1)).toBe("S 0");
      expect(await b.cgroup.pids()).toEqual([]);
    });

    it("reports a death by signal exactly (runsc alone would fold it into 139)", async () => {
      const b = await box();
      const run = await b.start();
      expect(await request(await run.init, python("import os; os.kill(os.getpid(), 11)"))).toBe(
        "signal 11\n",
      );
      await finish(run);
    });

    it("init fails cleanly when the guest's uid may not connect to the socket", async () => {
      // gVisor checks the socket file's owner and mode for the guest's uid:
      // a root-owned 0600 socket is refused to init (uid 1000).
      const b = await box({ socketOwner: 0 });
      const run = await b.start();
      const control = await finish(run);
      expect(control.at(-1)).toBe(`S ${127 << 8}`);
      expect(run.stderr()).toMatch(
        /warden-init: cannot connect to \/.warden\/ctl.sock: Permission denied/,
      );
    });

    it("relays the egress bridge to a host Unix socket", async () => {
      const dir = (await box()).dir; // for the socket's path only
      const egress = join(dir, "egress.sock");
      const proxy = createServer((s) => s.on("data", (d: Buffer) => s.end(`pong ${d.toString()}`)));
      await new Promise<void>((r) => proxy.listen(egress, r));
      chownSync(egress, 1000, 1000);
      try {
        const b = await box({
          initArgs: ["--bridge", "/.warden/egress.sock", "3128"],
          mounts: [
            {
              destination: "/.warden/egress.sock",
              type: "bind",
              source: egress,
              options: ["bind"],
            },
          ],
        });
        const run = await b.start();
        const code = [
          "import socket",
          "s = socket.create_connection(('127.0.0.1', 3128))",
          "s.sendall(b'ping'); print(s.recv(100).decode())",
        ].join("\n");
        expect(await request(await run.init, python(code))).toBe("exit 0\n");
        expect(run.stdout()).toBe("pong ping\n");
        await finish(run);
      } finally {
        proxy.close();
      }
    });

    it("serves a warm Python stub: ready only once the stub waits", async () => {
      const b = await box({
        initArgs: ["--warm", "/usr/bin/python3", "-u", "/.warden/warm/warm.py"],
        mounts: [
          {
            destination: "/.warden/warm/warm.py",
            type: "bind",
            source: join(NATIVE, "warm.py"),
            options: ["bind", "ro"],
          },
        ],
      });
      const run = await b.start();
      const init = await run.init;
      const main = `/proc/${run.helper.pid}/root${b.boxDir}/workspace/main.py`;
      writeFileSync(main, "import sys; print('warm', sys.argv[1:])\n");
      chownSync(main, 1000, 1000);
      const report = await request(
        init,
        python("", ["/usr/bin/python3", "-u", "/workspace/main.py", "a"]),
      );
      expect(report).toBe("exit 0\n");
      expect(run.stdout()).toBe("warm ['a']\n");
      await finish(run);
    });

    it("a SIGKILLed helper takes runsc, the gofer and the Sentry with it", async () => {
      const b = await box();
      const run = await b.start();
      const init = await run.init;
      init.end(python("import time; print('up', flush=True); time.sleep(300)"));
      for (let i = 0; i < 200 && !run.stdout().includes("up"); i++) await sleep(50);
      const processes = b.processes(runscOf(run, b));
      expect(processes.length).toBeGreaterThanOrEqual(3);
      run.helper.kill("SIGKILL");
      await run.exited;
      for (let i = 0; i < 200 && processes.some(alive); i++) await sleep(50);
      expect(processes.filter(alive)).toEqual([]);
      // Its state may stay in the root until a forced delete (the janitor's job).
      b.runsc("delete", "--force", b.containerId);
      expect(b.runsc("list", "--quiet").trim()).toBe("");
    });
  },
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}
