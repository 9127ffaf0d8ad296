"use strict";
// Warden's warm stub for Node.js. A pooled sandbox starts it exactly as it
// would start a program (node THIS_FILE), so the runtime is up before any
// request arrives. It says it is ready on fd 4, waits for the run request on
// fd 3 (the bytes warden-init got: see src/sandbox/init-request.ts), then runs
// the requested file as `node FILE ARGS...` would: Node's own entry point
// (CommonJS or ES module, require.main), with process.argv, the environment
// and the working directory of the request.
//
// warden-init has already lowered this process's rlimits to the request's.
// Warden sends only requests the stub can serve (src/runtimes/warm.ts); any
// other is run as a child process, as a last resort.
const fs = require("node:fs");
const path = require("node:path");

function request() {
  fs.writeSync(4, "r");
  fs.closeSync(4);
  const chunks = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n;
    try {
      n = fs.readSync(3, buf, 0, buf.length, null);
    } catch (error) {
      if (error.code === "EAGAIN") continue;
      throw error;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  fs.closeSync(3);
  const fields = Buffer.concat(chunks).toString("utf8").split("\0");
  let pos = 0;
  const take = () => fields[pos++];
  if (take() !== "W1") process.exit(127);
  const cwd = take();
  for (let i = Number(take()); i > 0; i--) take();
  const argv = [];
  for (let i = Number(take()); i > 0; i--) argv.push(take());
  const env = {};
  for (let i = Number(take()); i > 0; i--) {
    const item = take();
    const eq = item.indexOf("=");
    env[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return { cwd, argv, env };
}

const { cwd, argv, env } = request();
process.chdir(cwd);
if (argv[0] !== process.argv0 || argv.length < 2 || argv[1].startsWith("-")) {
  const child = require("node:child_process").spawnSync(argv[0], argv.slice(1), {
    stdio: "inherit",
    env,
    argv0: argv[0],
  });
  if (child.signal) process.kill(process.pid, child.signal);
  process.exit(child.status ?? 127);
}
for (const key of Object.keys(process.env)) delete process.env[key];
Object.assign(process.env, env);
process.argv = [process.execPath, path.resolve(argv[1]), ...argv.slice(2)];
require("node:module").runMain();
