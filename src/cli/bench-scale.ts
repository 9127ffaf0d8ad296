/**
 * `warden bench --scale` / `--sleepers N`: N sleeping executions live at once
 * through a real `warden serve` (its own process, so its RSS is Warden's
 * alone), spread over several users. Measures a trivial run's latency with 0
 * and with N sleepers live, Warden's RSS and open descriptors as the sleepers
 * arrive, and counts every error: a refused submission, a sleeper that never
 * ran or ended other than killed, a failed probe.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { round, stats, timed, type Stats } from "./measure.js";

export interface ScaleOptions {
  sleepers: number;
  /** Users the sleepers are spread over (delegated through one admin key). */
  users?: number;
  /** Trivial runs timed at 0 and at N live. */
  probes?: number;
  /** A JSON config file to start from (the scale settings override it). */
  configFile?: string | undefined;
  log?: (line: string) => void;
}

export interface ScaleResult {
  sleepers: number;
  /** Most sleeper programs seen running at once (counted in /proc). */
  peakLive: number;
  /** Seconds from the first submission until all were running. */
  rampSeconds: number;
  latencyAt0: Stats;
  latencyAtN: Stats;
  /** Median at N over median at 0. */
  latencyRatio: number;
  /** Warden's RSS (MiB) by live sleepers: 0, N/4, N/2, 3N/4, N. */
  rssMb: Record<string, number>;
  /** Warden's open descriptors at 0 and at N. */
  fds: { at0: number; atN: number };
  errors: number;
  errorSamples: string[];
}

const BIN = fileURLToPath(new URL("../../bin/warden.js", import.meta.url));
const SLEEPERS = [
  { language: "bash", code: "sleep 600" },
  { language: "python", code: "import time\ntime.sleep(600)" },
];

function procField(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? NaN);
}
/**
 * Sleeper programs actually running in this server's sandboxes, from the
 * kernel (the scheduler's active count includes runs still starting).
 */
function runningPrograms(cgroupPrefix: string): number {
  let n = 0;
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const comm = readFileSync(`/proc/${p}/comm`, "utf8").trim();
      if (comm !== "sleep" && !comm.startsWith("python")) continue;
      if (readFileSync(`/proc/${p}/cgroup`, "utf8").includes(cgroupPrefix)) n++;
    } catch {
      // gone meanwhile
    }
  }
  return n;
}

const rssMbOf = (pid: number): number => round(procField(pid, "VmRSS") / 1024);
const fdsOf = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

/** Runs `fn` over `items` with at most `width` at once. */
async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function startServe(
  config: Record<string, unknown>,
  dir: string,
  token: string,
): Promise<{ child: ChildProcess; url: string; tail: string[] }> {
  const configFile = join(dir, "config.json");
  writeFileSync(configFile, JSON.stringify(config));
  const child = spawn(process.execPath, [BIN, "serve"], {
    env: {
      ...process.env,
      WARDEN_CONFIG: configFile,
      WARDEN_DATA_DIR: join(dir, "data"),
      WARDEN_ADMIN_TOKEN: token,
      WARDEN_PORT: "0",
      WARDEN_LOG_LEVEL: "info",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const tail: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    let buffer = "";
    child.stderr.on("data", (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        if (line.includes('"warden serving"')) {
          const address = (JSON.parse(line) as { address?: string }).address;
          if (address) resolve(address);
        }
      }
    });
    child.once("exit", (code) =>
      reject(new Error(`warden serve exited ${code}: ${tail.join("\n")}`)),
    );
  });
  return { child, url, tail };
}

export async function benchScale(o: ScaleOptions): Promise<ScaleResult> {
  const n = o.sleepers;
  const users = Math.max(1, o.users ?? 8);
  const probes = Math.max(3, o.probes ?? 15);
  const log = o.log ?? (() => undefined);
  const dir = mkdtempSync(join(tmpdir(), "warden-bench-scale-"));
  const base = o.configFile
    ? (JSON.parse(readFileSync(o.configFile, "utf8")) as Record<string, unknown>)
    : {};
  const lavish = { burst: 100_000, perMinute: 1_000_000, perHour: 10_000_000 };
  const config = {
    ...base,
    maxConcurrentSandboxes: n + 10,
    maxSandboxesPerUser: Math.ceil(n / users) + 1,
    maxQueueSize: n + 100,
    maxQueuedPerUser: n + 100,
    // Sleepers use a few MiB each: count what they use, not what they may use.
    memoryBudgetMode: "usage",
    memoryAdmissionMB: 16,
    server: {
      ...((base.server as object | undefined) ?? {}),
      rateLimits: { perKey: lavish, perIp: lavish },
    },
  };
  const token = `bench-${randomBytes(16).toString("hex")}`;
  const { child, url } = await startServe(config, dir, token);
  const pid = child.pid!;
  const errors: string[] = [];
  const api = async (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const sandboxParent = (base.sandbox as { cgroupParent?: string } | undefined)?.cgroupParent;
  const cgroupPrefix = `/${sandboxParent ?? "warden"}/b${pid}-`;
  const active = async (): Promise<number> =>
    ((await (await api("GET", "/api/sandbox/metrics")).json()) as { activeExecutions: number })
      .activeExecutions;
  const probe = async (): Promise<void> => {
    const r = await api("POST", "/v1/executions", {
      language: "python",
      code: "print(1)",
      userId: "probe",
    });
    const result = (await r.json()) as { status?: string };
    if (result.status !== "completed") errors.push(`probe: ${r.status} ${result.status}`);
  };
  const latency = async (): Promise<Stats> => {
    const samples: number[] = [];
    for (let i = 0; i < probes; i++) samples.push(await timed(probe));
    return stats(samples);
  };
  try {
    for (let i = 0; i < 3; i++) await probe(); // warm caches and the runtime check
    const rssMb: Record<string, number> = { "0": rssMbOf(pid) };
    const fdsAt0 = fdsOf(pid);
    const latencyAt0 = await latency();
    log(`  0 live: trivial run median ${latencyAt0.medianMs} ms; submitting ${n} sleepers`);
    const ids: string[] = [];
    const rampStart = Date.now();
    await pool([...Array(n).keys()], 8, async (i) => {
      const sleeper = SLEEPERS[i % SLEEPERS.length]!;
      const r = await api("POST", "/v1/executions", {
        ...sleeper,
        timeout: 600,
        wait: false,
        userId: `scale-${i % users}`,
      });
      const body = (await r.json()) as { id?: string; error?: { code: string; message: string } };
      if (r.status === 202 && body.id) ids.push(body.id);
      else errors.push(`submit: ${r.status} ${body.error?.code}: ${body.error?.message}`);
    });
    const marks = [0.25, 0.5, 0.75, 1].map((f) => Math.max(1, Math.round(f * n)));
    let peakLive = 0;
    let lastProgress = Date.now();
    while (peakLive < ids.length) {
      const live = runningPrograms(cgroupPrefix);
      if (live > peakLive) lastProgress = Date.now();
      peakLive = Math.max(peakLive, live);
      for (const m of marks)
        if (live >= m && rssMb[String(m)] === undefined) rssMb[m] = rssMbOf(pid);
      if (Date.now() - lastProgress > 120_000) {
        errors.push(`only ${live} of ${ids.length} sleepers running after 2 min without progress`);
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const rampSeconds = round((Date.now() - rampStart) / 1000);
    const fdsAtN = fdsOf(pid);
    log(`  ${peakLive} live after ${rampSeconds} s; timing trivial runs`);
    const latencyAtN = await latency();
    // Asked of the API, not counted from /proc: the warm pool's interpreters look like sleepers there.
    let ended = 0;
    await pool(ids, 8, async (id) => {
      const r = (await (await api("GET", `/v1/executions/${id}`)).json()) as { status?: string };
      if (r.status !== "running") ended++;
    });
    if (ended > 0) errors.push(`${ended} sleepers ended before their kill`);
    rssMb[String(n)] = Math.max(rssMb[String(n)] ?? 0, rssMbOf(pid));
    log(`  ${n} live: trivial run median ${latencyAtN.medianMs} ms; killing the sleepers`);
    await pool(ids, 8, async (id) => {
      const r = await api("POST", `/v1/executions/${id}/kill`);
      if (r.status !== 200) errors.push(`kill ${id}: ${r.status}`);
      await r.body?.cancel();
    });
    await pool(ids, 8, async (id) => {
      for (let tries = 0; tries < 600; tries++) {
        const r = (await (await api("GET", `/v1/executions/${id}`)).json()) as { status?: string };
        if (r.status === "killed") return;
        if (r.status !== "running" && r.status !== "queued") {
          errors.push(`sleeper ${id} ended ${r.status}`);
          return;
        }
        await new Promise((res) => setTimeout(res, 100));
      }
      errors.push(`sleeper ${id} still live a minute after its kill`);
    });
    if ((await active()) !== 0) errors.push("executions still active after every kill");
    return {
      sleepers: n,
      peakLive,
      rampSeconds,
      latencyAt0,
      latencyAtN,
      latencyRatio: round(latencyAtN.medianMs / latencyAt0.medianMs),
      rssMb,
      fds: { at0: fdsAt0, atN: fdsAtN },
      errors: errors.length,
      errorSamples: errors.slice(0, 5),
    };
  } finally {
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
    rmSync(dir, { recursive: true, force: true });
  }
}
