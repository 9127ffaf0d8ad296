// warden JavaScript kernel: a persistent code context inside a session's
// sandbox, started by the session agent. Requests arrive on fd 3 as JSON
// lines ({id, code, timeoutMs, typescript, env?}); each gets one JSON line back on
// fd 3: {id, type: "result", results: [MIME bundles], error}. Top-level
// let/const, functions and globals persist between cells (one vm context);
// the last expression's value (awaited if it is a promise) is the main
// result. Cells may use top-level await and `import` (cell-transform.cjs);
// TypeScript cells have their types stripped by Warden's esbuild first.
// Bundled with acorn at build time (scripts/build-native.sh).
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const { builtinModules, createRequire } = require("node:module");
const path = require("node:path");
const readline = require("node:readline");
const { pathToFileURL } = require("node:url");
const util = require("node:util");
const vm = require("node:vm");
const { transformCell } = require("./cell-transform.cjs");

// The agent interrupts runaway cells with SIGINT; vm's own timeout does the work.
process.on("SIGINT", () => {});

const ESBUILD = "/.warden/lib/esbuild";
/** A TypeScript cell's JavaScript, at most (the cell itself is at most 1 MiB). */
const TS_OUTPUT_BYTES = 16 * 1024 * 1024;

// Modules resolve from the session's working directory, as a script there would.
const cellRequire = createRequire(path.join(process.cwd(), "<cell>"));
// A dynamic import() of the kernel's own realm (esbuild must not rewrite it into require()).
const nativeImport = new Function("specifier", "return import(specifier)");

/** `import` in a cell: node: built-ins as they are, the rest resolved from the working directory. */
function importFromCell(specifier) {
  const spec = String(specifier);
  if (spec.startsWith("node:") || builtinModules.includes(spec)) return nativeImport(spec);
  try {
    return nativeImport(pathToFileURL(cellRequire.resolve(spec)).href);
  } catch {
    // An ES-only package has no require() entry point: let Node's resolver try.
    const relative = spec.startsWith(".") || spec.startsWith("/");
    return nativeImport(relative ? pathToFileURL(path.resolve(process.cwd(), spec)).href : spec);
  }
}

/** A module's names for `import {a}`: its own exports first, then a CommonJS default's properties. */
function namedExports(namespace) {
  const fallback = namespace.default;
  const base = fallback !== null && (typeof fallback === "object" || typeof fallback === "function") ? fallback : {};
  return new Proxy(namespace, {
    get: (target, key) => (key in target ? target[key] : base[key]),
  });
}

const sandbox = {
  console,
  require: cellRequire,
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
  __warden_import: importFromCell,
  __warden_named: namedExports,
};
const context = vm.createContext(sandbox);
sandbox.globalThis = sandbox;

const output = fs.createWriteStream(null, { fd: 3 });
const input = readline.createInterface({ input: fs.createReadStream(null, { fd: 3 }) });

function bundle(value) {
  const data = { "text/plain": util.inspect(value, { depth: 4, colors: false }) };
  if (value !== null && typeof value === "object") {
    try {
      const json = JSON.stringify(value);
      // The agent keeps 4 MiB a result: a bigger value would only be dropped there.
      if (typeof json === "string" && json.length <= 4 * 1024 * 1024) data["application/json"] = json;
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

/** A TypeScript cell as JavaScript (types stripped, imports kept), or throws a SyntaxError. */
function stripTypes(code, timeoutMs) {
  if (!fs.existsSync(ESBUILD)) throw new Error("TypeScript cells need Warden's esbuild, which is not installed");
  const out = spawnSync(
    ESBUILD,
    ["--loader=ts", "--log-level=error", '--tsconfig-raw={"compilerOptions":{"verbatimModuleSyntax":true}}'],
    { input: code, maxBuffer: TS_OUTPUT_BYTES, timeout: timeoutMs, encoding: "utf8" },
  );
  if (out.status === 0) return out.stdout;
  const message = (out.stderr || (out.error && out.error.message) || "esbuild failed").slice(0, 4096);
  throw Object.assign(new SyntaxError(message.replace(/\u001b\[[0-9;]*m/g, "").trim()), { stack: "" });
}

/**
 * A cell's own environment variables (E2B's env_vars): set for this cell, then
 * put back as they were, so they do not leak into the next one.
 */
function setEnv(env) {
  const saved = new Map();
  if (!env || typeof env !== "object") return saved;
  for (const [key, value] of Object.entries(env)) {
    if (typeof value !== "string" || !key || key.includes("=") || (key + value).includes("\0")) continue;
    if (!saved.has(key)) saved.set(key, Object.hasOwn(process.env, key) ? process.env[key] : undefined);
    process.env[key] = value;
  }
  return saved;
}

function restoreEnv(saved) {
  for (const [key, value] of saved) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
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
    if (!request || typeof request !== "object") return;
    const results = [];
    let error = null;
    let timedOut = false;
    const savedEnv = setEnv(request.env);
    try {
      cells += 1;
      const timeout = request.timeoutMs || 60000;
      let code = String(request.code || "");
      if (request.typescript === true) code = stripTypes(code, timeout);
      let value = vm.runInContext(transformCell(code), context, {
        filename: `<cell ${cells}>`,
        timeout,
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
    } finally {
      restoreEnv(savedEnv);
    }
    const answer = { id: request.id, nonce: request.nonce, type: "result", results, error, timedOut };
    output.write(`${JSON.stringify(answer)}\n`);
  });
});
