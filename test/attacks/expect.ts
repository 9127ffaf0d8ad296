/**
 * What each isolation tier answers to the attacks whose outcome differs, in
 * ONE table, so no test hides a tier in an inline `if`. Everything not here
 * is the same contract in both tiers. The gVisor column was measured with
 * Debian's runsc 0.0~20221219.0 (ptrace platform) on a bundle like Warden's:
 * uid 1000, no capabilities, no_new_privs (DESIGN-18 §3).
 */
import { expect } from "vitest";
import type { Isolation } from "../../src/contract/isolation.js";
import type { ExecutionResult } from "../../src/contract/result.js";
import { config } from "../helpers/sandbox.js";

/**
 * System calls gVisor implements inside its own kernel (the Sentry), where
 * they touch only the guest: a user namespace and what it then permits
 * (unshare of mount/net, chroot), io_uring and ptrace of the guest's own
 * processes. The host kernel never sees the call, only runsc's filter does.
 */
const SENTRY_OWN = new Set([
  "unshare_user",
  "unshare_mount",
  "unshare_net",
  "chroot",
  "io_uring_setup",
  "ptrace",
]);

/** Refusals gVisor answers with (it has no seccomp of ours, so not always EPERM). */
const SENTRY_REFUSALS = new Set([
  "EPERM",
  "ENOSYS",
  "EINVAL",
  "EACCES",
  "EOPNOTSUPP",
  "ENODEV",
  "ENOTTY",
]);

const MiB = 1024 * 1024;
/** The memory cgroup charges in batches of 64 pages: a peak may pass the limit by that. */
const CHARGE_BATCH = 64 * 4096;
/** The Sentry's room in a gVisor box's memory cgroup (sandbox.gvisor.memoryOverheadMb). */
const GVISOR_MB = config.sandbox.gvisor.memoryOverheadMb;

const UNREADABLE = /^(FileNotFoundError|PermissionError)$/;

export interface TierExpectations {
  /** What read-host.py saw of a host path (secrets, Warden's state, /sys). */
  hostPath(path: string, seen: unknown): void;
  /** The sandbox's /proc/self/cgroup: its own root, never a host path. */
  ownCgroup: RegExp;
  /** identity.sh's /proc/self/status lines. */
  status: { seccomp: RegExp; noNewPrivs: RegExp };
  /** identity.sh's `unshare -U true` line. */
  unshare: RegExp;
  /** Checks one line of syscalls.c (`name outcome`). */
  syscall(name: string, outcome: string): void;
  /** A system call through the i386 (int 0x80) or x32 entry. */
  foreignAbi(result: ExecutionResult): void;
  /** A memory bomb under `memoryMb`. */
  memoryBomb(result: ExecutionResult, memoryMb: number): void;
  /** A /dev/shm bomb under `memoryMb` (and RLIMIT_FSIZE at diskMb). */
  shmBomb(result: ExecutionResult, memoryMb: number): void;
  /** A fork bomb under pids.max with a short timeout. */
  forkBomb(result: ExecutionResult): void;
  /**
   * Who runs a box's processes on the host: the box's own uid (namespaces),
   * or runsc's gofer (root) and Sentry (nobody), never the box uid (gvisor).
   */
  hostProcesses: "box-uid" | "runsc";
}

export const EXPECT: Record<Isolation, TierExpectations> = {
  namespaces: {
    hostPath(path, seen) {
      expect(seen, path).toMatch(UNREADABLE);
    },
    ownCgroup: /:\/$/m,
    status: { seccomp: /Seccomp:\s+2/, noNewPrivs: /NoNewPrivs:\s+1/ },
    unshare: /unshare: refused/,
    syscall(name, outcome) {
      expect(outcome, name).not.toBe("ALLOWED");
      if (name === "clone3") expect(outcome).toBe("ENOSYS");
      else if (name !== "setuid_root") expect(outcome, name).toBe("EPERM");
    },
    foreignAbi(result) {
      expect(result).toMatchObject({ status: "failed", signal: "SIGSYS", stdout: "" });
    },
    memoryBomb(result, memoryMb) {
      expect(result).toMatchObject({ status: "memory_limit", signal: "SIGKILL" });
      expect(result.metrics.peakMemoryBytes).toBeLessThanOrEqual(memoryMb * MiB);
    },
    shmBomb(result) {
      expect(result.status).toBe("memory_limit");
    },
    forkBomb(result) {
      expect(result.status).toBe("timeout");
    },
    hostProcesses: "box-uid",
  },
  gvisor: {
    hostPath(path, seen) {
      // runsc would mount its own kernel's sysfs; the bundle covers /sys with
      // an empty read-only tmpfs, so /sys/fs/cgroup is absent as in namespaces.
      expect(seen, path).toMatch(UNREADABLE);
    },
    // gVisor's own /proc/self/cgroup is empty: no host path shows.
    ownCgroup: /^$|:\/$/m,
    // gVisor's /proc: no seccomp of the guest's own, no NoNewPrivs line (measured).
    status: { seccomp: /Seccomp:\s+0/, noNewPrivs: /^(?![\s\S]*NoNewPrivs:\s+0)/ },
    // A user namespace inside the Sentry touches only the guest: allowed by a bare
    // runsc bundle (measured), refused under Warden's; either way harmless.
    unshare: /unshare: (refused|ALLOWED)/,
    syscall(name, outcome) {
      if (SENTRY_OWN.has(name)) return;
      expect(SENTRY_REFUSALS.has(outcome), `${name} ${outcome}`).toBe(true);
    },
    foreignAbi(result) {
      // The Sentry answers the foreign entry with an error (EINVAL / EPERM measured), or kills.
      expect(result.stdout).not.toMatch(/returned [1-9]/);
      expect(["completed", "failed"]).toContain(result.status);
    },
    memoryBomb(result, memoryMb) {
      // The host OOM killer takes the whole Sentry: init cannot report a signal (null).
      expect(result.status).toBe("memory_limit");
      expect([null, "SIGKILL"]).toContain(result.signal);
      // v1's max_usage_in_bytes may pass the limit by the kernel's charge batch (64 pages),
      // measured 4 KiB over: the bound is the cgroup's, not a byte-exact figure.
      expect(result.metrics.peakMemoryBytes).toBeLessThanOrEqual(
        (memoryMb + GVISOR_MB) * MiB + CHARGE_BATCH,
      );
    },
    shmBomb(result, memoryMb) {
      // gVisor's /dev/shm is its own tmpfs, in the Sentry's memory (so in the cgroup),
      // and RLIMIT_FSIZE binds there first: EFBIG before the cgroup's limit, or the OOM kill.
      const stopped =
        result.status === "memory_limit" ||
        (result.status === "failed" && /File too large/.test(result.stderr));
      expect(stopped, `${result.status} ${result.stderr.slice(-200)}`).toBe(true);
      expect(result.metrics.peakMemoryBytes).toBeLessThanOrEqual(
        (memoryMb + GVISOR_MB) * MiB + CHARGE_BATCH,
      );
    },
    forkBomb(result) {
      // The host pids.max kills the whole Sentry (gVisor has no RLIMIT_NPROC).
      const ok =
        result.status === "timeout" || (result.status === "failed" && result.signal === "SIGKILL");
      expect(ok, `${result.status} ${result.signal}`).toBe(true);
    },
    hostProcesses: "runsc",
  },
};
