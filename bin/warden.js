#!/usr/bin/env node
// Entry point of the `warden` command: the compiled CLI lives in dist/.

// Sandbox starts and teardowns make cgroup directories, which can wait in the
// kernel for an RCU grace period on libuv's thread pool; with its default of 4
// threads a few of them stall every other file operation of the service.
process.env.UV_THREADPOOL_SIZE ??= "16";
const { main } = await import("../dist/cli/main.js");

process.exitCode = await main(process.argv);
