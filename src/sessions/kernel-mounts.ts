/**
 * What a session's code contexts need inside the sandbox, read-only under
 * /.warden/lib: the Python kernel and its modules (IPython engine, built-in
 * engine), the JavaScript kernel (acorn bundled in), the bash context's rc
 * file and framing, and Warden's esbuild for TypeScript cells when it is
 * installed. See docs/kernels.md.
 */
import { existsSync } from "node:fs";
import type { SandboxHost } from "../sandbox/host.js";
import type { ReadOnlyMount } from "../sandbox/types.js";

const LIB = "/.warden/lib";

/** Kernel files beside the agent; each is optional on the host (a missing one: that context fails). */
const KERNEL_FILES = [
  "kernel.py",
  "kernel_common.py",
  "kernel_builtin.py",
  "kernel_display.py",
  "kernel_ipython.py",
  "kernel.cjs",
  "kernel-bash.cjs",
  "kernel.bash",
  "esbuild",
];

export function kernelMounts(host: SandboxHost): ReadOnlyMount[] {
  return KERNEL_FILES.map((name) => ({
    source: host.privateFile(name),
    target: `${LIB}/${name}`,
  })).filter((m) => existsSync(m.source));
}

/** The environment the agent passes on to its kernels. */
export function kernelEnv(
  python: string | null,
  pythonKernel: "auto" | "builtin" | undefined,
): Record<string, string> {
  if (!python) return {};
  return {
    WARDEN_PYTHON: python,
    MPLBACKEND: "Agg",
    PYTHONDONTWRITEBYTECODE: "1",
    // Read and removed by kernel.py; a request's env never reaches the kernel's.
    ...(pythonKernel === "builtin" ? { WARDEN_PYTHON_KERNEL: "builtin" } : {}),
  };
}
