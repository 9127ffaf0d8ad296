/**
 * The isolation tiers (docs/isolation.md). `namespaces`: bubblewrap's
 * namespaces, cgroups and a seccomp filter over the host kernel (fast).
 * `gvisor`: the same limits around runsc, whose user-space kernel answers the
 * program's system calls so the host kernel never sees them (slower, stronger).
 */
import { z } from "zod";

export const IsolationSchema = z
  .enum(["namespaces", "gvisor"])
  .describe(
    "Isolation tier: namespaces (default; host kernel behind namespaces and seccomp) or gvisor (gVisor's user-space kernel).",
  );

export type Isolation = z.infer<typeof IsolationSchema>;
