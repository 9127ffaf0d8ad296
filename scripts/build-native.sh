#!/usr/bin/env bash
# Compiles Warden's native helpers and generates the seccomp filter with
# libseccomp. Output goes to build/native (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/native
mkdir -p "$out"
cc=${CC:-cc}
flags=(-O2 -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -fstack-protector-strong)
"$cc" "${flags[@]}" -o "$out/warden-exec" native/warden-exec.c
# The long-lived launcher of warden-exec (see the file: Node never forks per run).
"$cc" "${flags[@]}" -o "$out/warden-launch" native/warden-launch.c
# init runs inside sandboxes that may lack the host's libc paths: link it statically.
"$cc" "${flags[@]}" -static -o "$out/warden-init" native/warden-init.c
"$cc" "${flags[@]}" -o "$out/seccomp-gen" native/seccomp-gen.c -lseccomp
"$out/seccomp-gen" "$out/seccomp.bpf"
echo "native helpers built in $out"
# Node programs with egress get fetch routed through the proxy (see the file).
npx --no-install esbuild native/node-proxy.cjs --bundle --platform=node --format=cjs \
  --log-level=warning --outfile="$out/node-proxy.cjs"
# The session agent is plain CommonJS with Node built-ins only, in one file
# (its workspace ops, native/agent-workspace.cjs, bundled in).
npx --no-install esbuild native/agent.cjs --bundle --platform=node --format=cjs \
  --log-level=warning --outfile="$out/agent.cjs"
cp native/kernel.py native/kernel_common.py native/kernel_builtin.py native/kernel_display.py \
  native/kernel_ipython.py native/kernel-bash.cjs native/kernel.bash "$out/"
# The JavaScript kernel carries acorn (its cell transform) inside: the sandbox has no node_modules.
npx --no-install esbuild native/kernel.cjs --bundle --platform=node --format=cjs \
  --log-level=warning --outfile="$out/kernel.cjs"
# Warm stubs: pooled sandboxes start them in place of a program (src/runtimes/warm.ts).
cp native/warm.py native/warm.cjs "$out/"
# The Python analyser runs in a one-shot sandbox (src/policy/python.ts), never on the host.
cp native/analyze.py "$out/"
