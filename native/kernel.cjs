// warden JavaScript kernel: a persistent code context inside a session's
// sandbox, started by the session agent. Requests arrive on fd 3 as JSON
// lines ({id, code, timeoutMs}); each gets one JSON line back on fd 3:
// {id, type: "result", results: [MIME bundles], error}. Top-level let/const,
// functions and globals persist between cells (one vm context); the last
// expression's value (awaited if it is a promise) is the main result.
"use strict";
const fs = require("node:fs");
const readline = require("node:readline");
const util = require("node:util");
const vm = require("node:vm");

// The agent interrupts runaway cells with SIGINT; vm's own timeout does the work.
process.on("SIGINT", () => {});

const sandbox = {
  console,
  require,
  process,
  Buffer,
  URL,
  URLSearchParams,
  TextEncoder,
  TextDecoder,
  setTimeout,
  clearTimeout,
  setInterval,
  clearInterval,
  setImmediate,
  queueMicrotask,
  structuredClone,
  fetch: globalThis.fetch,
};
const context = vm.createContext(sandbox);
sandbox.globalThis = sandbox;

const output = fs.createWriteStream(null, { fd: 3 });
const input = readline.createInterface({ input: fs.createReadStream(null, { fd: 3 }) });

function bundle(value) {
  const data = { "text/plain": util.inspect(value, { depth: 4, colors: false }) };
  if (value !== null && typeof value === "object") {
    try {
      data["application/json"] = JSON.stringify(value);
    } catch {}
  }
  return data;
}

// A stack of the user's code only: frames from here down (node:vm running the
// cell, this kernel, Node's event plumbing) are Warden's, not the user's.
function userStack(e) {
  let stack;
  try {
    stack = String((e && e.stack) || e);
  } catch {
    return "(the error's stack could not be read)";
  }
  const lines = stack.split("\n");
  const cut = lines.findIndex(
    (l) => /^\s+at /.test(l) && (l.includes(__filename) || /\(?node:vm[:)]/.test(l)),
  );
  return (cut < 0 ? lines : lines.slice(0, cut)).join("\n");
}

let chain = Promise.resolve();
let cells = 0;
input.on("line", (line) => {
  chain = chain.then(async () => {
    let request;
    try {
      request = JSON.parse(line);
    } catch {
      return;
    }
    const results = [];
    let error = null;
    let timedOut = false;
    try {
      cells += 1;
      let value = vm.runInContext(String(request.code || ""), context, {
        filename: `<cell ${cells}>`,
        timeout: request.timeoutMs || 60000,
        breakOnSigint: false,
      });
      if (value && typeof value.then === "function") value = await value;
      if (value !== undefined) results.push({ data: bundle(value), isMainResult: true });
    } catch (e) {
      timedOut = Boolean(e && e.code === "ERR_SCRIPT_EXECUTION_TIMEOUT");
      error = {
        name: timedOut ? "TimeoutError" : (e && e.name) || "Error",
        value: String((e && e.message) || e),
        traceback: userStack(e),
      };
    }
    output.write(`${JSON.stringify({ id: request.id, type: "result", results, error, timedOut })}\n`);
  });
});
