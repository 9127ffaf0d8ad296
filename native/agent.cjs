// warden session agent: runs inside a session's sandbox as the long-lived
// program under warden-init. It reads JSON requests, one per line, on stdin
// and answers with JSON events, one per line, on stdout. Warden does not
// trust it (user code can take it over): the host checks every line against
// src/sessions/agent-protocol.ts, and a line longer than LINE_CHARS or out of
// schema ends the session. So big payloads go as pieces that each fit a line:
//   exec   {id, op, argv | shell, cwd, env, stdin, keepStdin, timeoutMs (0 = none), outputBytes}
//          → {id, type: "stdout" | "stderr", data}* then {id, type: "exit", exitCode, signal, timedOut, truncated, durationMs}
//   run    {id, op, language (python, javascript, typescript, bash), code, timeoutMs, outputBytes}
//          → {id, type: "stdout" | "stderr", data}*, ({id, type: "result", isMainResult, metadata?} then {id, type: "mime", mime, data}*)*
//            then {id, type: "cell", error, timedOut, truncated, durationMs}
//   write  {id, op, path, content (base64), mode} → {id, type: "ok"}
//   read   {id, op, path, maxBytes}               → {id, type: "data", data (base64)}* then {id, type: "file", size}
//   list   {id, op, path}                         → {id, type: "entries", entries: [{name, type, size, mtime}]}* then {id, type: "list"}
//   delete {id, op, path} / mkdir {id, op, path}  → {id, type: "ok"}
//   stat   {id, op, path}                         → {id, type: "stat", entry: {type, size, mode, uid, gid, mtime, target} | null, inside, real}
//   move   {id, op, path, destination}            → {id, type: "ok"} (rename, the destination's parents made)
//   collect {id, op, since, maxBytes, maxCount, maxTotal}
//          → ({id, type: "artifact", name, size, read, problem?} then {id, type: "data", data}* when read)*
//            then {id, type: "collected"}: regular files under /workspace/output changed since
//            `since` (ms), never following links
//   cancel {id, op, target}                       → {id, type: "ok"}: kills a running exec's process
//          group, or interrupts a running cell (KeyboardInterrupt)
//   stdin  {id, op, target, data, eof}            → {id, type: "ok"}  (to a running exec)
//   signal {id, op, target, signal}               → {id, type: "ok"}  (to its whole process group)
//   relay  {id, op, port, socket, token}           → {id, type: "ok"} once 127.0.0.1:port inside
//          is joined to Warden's preview socket (which this agent dials, announcing the token)
//   snapshot, restore, watch: see agent-workspace.cjs (bundled into this file at build)
//   context-create {id, op, context, language, cwd} / context-restart {id, op, context} /
//   context-close {id, op, context} → {id, type: "ok"}: named code contexts (E2B's
//          createCodeContext), each its own kernel; a run naming `context` uses it, and
//          `env` on a run is set around that one cell. Restart and close kill the kernel
//          (its variables are gone); a default context (python, javascript, bash) restarts too.
// Errors: {id, type: "error", code, message}. Everything it touches is the
// sandbox's own: the host never opens a path the sandbox controls.
"use strict";
const { spawn } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const net = require("node:net");
const path = require("node:path");
const readline = require("node:readline");
const { StringDecoder } = require("node:string_decoder");

// Bounds the host enforces too (src/sessions/agent-protocol.ts); kept here so
// that an honest agent never trips them.
const LINE_CHARS = 1024 * 1024;
/** Raw bytes per output piece: even escaped 6x in JSON, well under a line. */
const OUTPUT_PIECE = 64 * 1024;
/** Raw bytes per base64 piece (file and artifact bytes). */
const DATA_PIECE = 192 * 1024;
/** Characters per piece of a rich result's value. */
const MIME_PIECE = 128 * 1024;
const MAX_RESULTS = 32;
const MAX_MIMES = 16;
const RESULT_BYTES = 4 * 1024 * 1024;
const CELL_RESULT_BYTES = 16 * 1024 * 1024;
const ERROR_CHARS = 32 * 1024;
const LIST_BATCH = 200;
/** A MIME type as Jupyter writes them (the host accepts this shape only). */
const MIME_TYPE = /^[a-z0-9][a-z0-9.+-]{0,63}\/[a-z0-9][a-z0-9.+-]{0,63}$/;
/** A rich result's metadata, as JSON characters. */
const METADATA_CHARS = 16 * 1024;
/** A kernel's answer line, at most: kernels keep a cell's results to 16 MiB; escaped, well under this. */
const KERNEL_LINE_CHARS = 64 * 1024 * 1024;

/** Persistent code contexts (python, javascript, bash), each started on first use; one cell at a time. */
const kernels = {};
let cellChain = Promise.resolve();
const KERNEL_NAMES = { python: "Python", javascript: "JavaScript", bash: "bash" };
/** Named contexts by id: {language, cwd}; their kernels are kernels[`ctx:${id}`]. */
const namedContexts = {};
const CONTEXT_ID = /^[a-z0-9-]{1,64}$/;

/** The bash context's framing (native/kernel-bash.cjs), loaded when first used. */
function bashKernel() {
  return require("./kernel-bash.cjs");
}

/** Signals a context; bash's whole process group, so that its running command gets it. */
function signalKernel(k, signal) {
  try {
    if (k.group) process.kill(-k.child.pid, signal);
    else k.child.kill(signal);
  } catch {}
}

/** The kernel a cell language runs in (TypeScript runs in the JavaScript one). */
function kernelOf(language) {
  if (language === "javascript" || language === "typescript") return "javascript";
  return language === "bash" ? "bash" : "python";
}

function kernelCommand(language) {
  if (language === "bash") return bashKernel().command();
  if (language === "javascript") return [process.execPath, ["/.warden/lib/kernel.cjs"]];
  // A context (re)starts from the session's venv; one the user removed is written again.
  try {
    preparePrefixes();
  } catch {}
  const venvPython = process.env.WARDEN_PYTHON;
  const python = venvPython && fs.existsSync(venvPython) ? venvPython : process.env.WARDEN_PYTHON_BASE || venvPython;
  if (!python)
    throw Object.assign(new Error("language: python is not available in this session"), {
      code: "UNSUPPORTED_LANGUAGE",
    });
  return [python, ["-u", "/.warden/lib/kernel.py"]];
}

function startKernel(language, key = language, cwd = ROOT) {
  const [command, args] = kernelCommand(language);
  const bash = language === "bash";
  // bash gets its cells on stdin and a process group of its own (interrupts reach its command).
  const child = spawn(command, args, {
    cwd,
    stdio: [bash ? "pipe" : "ignore", "pipe", "pipe", "pipe"],
    detached: bash,
  });
  const k = { child, current: null, group: bash };
  // A context that dies as it starts (a user's usercustomize.py can see to that) makes
  // writing its request an EPIPE: without a listener that error would end the agent.
  for (const stream of [child.stdin, child.stdio[3]]) if (stream) stream.on("error", () => {});
  const decoders = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") };
  // A cell's output is capped per stream like a command's (the host cuts too).
  const forward = (name) => (d) => {
    const cell = k.current;
    if (!cell) return;
    const room = cell.cap - cell.sent[name];
    if (d.length > room) cell.truncated = true;
    if (room <= 0) return;
    const kept = d.length > room ? d.subarray(0, room) : d;
    cell.sent[name] += kept.length;
    sendOutput(cell.id, name, kept, decoders[name]);
  };
  child.stdout.on("data", forward("stdout"));
  child.stderr.on("data", forward("stderr"));
  // Results can be long and carry any text: a character split across reads stays whole.
  const results = new StringDecoder("utf8");
  // A line is kept as pieces until its end arrives (never searched or joined whole before).
  let pieces = [];
  let pending = 0;
  child.stdio[3].on("data", (d) => {
    let text = results.write(d);
    let nl;
    while ((nl = text.indexOf("\n")) >= 0) {
      const line = pieces.join("") + text.slice(0, nl);
      pieces = [];
      pending = 0;
      text = text.slice(nl + 1);
      try {
        const ev = bash ? bashKernel().answer(k, line) : JSON.parse(line);
        // The cell's unguessable nonce, not its id (ids are sequential): a line
        // written by an earlier cell's code cannot end a later cell.
        if (ev && k.current && ev.id === k.current.id && (bash || ev.nonce === k.current.nonce))
          k.current.done(ev);
      } catch {}
    }
    if (!text) return;
    pending += text.length;
    pieces.push(text);
    // A line longer than any honest answer: the context is not keeping to it; restart it.
    if (pending > KERNEL_LINE_CHARS) {
      pieces = [];
      pending = 0;
      signalKernel(k, "SIGKILL");
    }
  });
  const gone = (code) => {
    if (kernels[key] === k) delete kernels[key];
    if (k.current)
      k.current.done({
        type: "result",
        results: [],
        error: {
          name: "KernelDied",
          value: bash
            ? `bash exited with status ${code}; the next call starts a new shell`
            : `the ${KERNEL_NAMES[language]} context ended; its state is lost`,
          traceback: "",
        },
      });
  };
  child.on("exit", gone);
  // It could not be started at all (no exit follows).
  child.on("error", () => gone(null));
  return k;
}

function runCell(req) {
  cellChain = cellChain.then(
    () =>
      new Promise((resolve) => {
        const started = Date.now();
        let k;
        let typescript = req.language === "typescript";
        try {
          const named = req.context ? namedContexts[req.context] : null;
          if (req.context && !named)
            throw Object.assign(new Error(`context ${req.context}: not found`), { code: "NOT_FOUND" });
          const language = kernelOf(named ? named.language : req.language);
          const key = named ? `ctx:${req.context}` : language;
          if (named) typescript = named.language === "typescript";
          k = kernels[key] || (kernels[key] = startKernel(language, key, named ? named.cwd : ROOT));
        } catch (e) {
          fail(req.id, e.code, e.message);
          return resolve();
        }
        let timedOut = false;
        let hard = null;
        const timer = setTimeout(() => {
          timedOut = true;
          signalKernel(k, "SIGINT"); // KeyboardInterrupt in the cell; state survives
          hard = setTimeout(() => signalKernel(k, "SIGKILL"), 2000); // it would not stop: restart
        }, req.timeoutMs || 60000);
        k.current = {
          id: req.id,
          nonce: crypto.randomBytes(16).toString("hex"),
          cap: req.outputBytes || 1 << 20,
          sent: { stdout: 0, stderr: 0 },
          truncated: false,
          done: (ev) => {
            clearTimeout(timer);
            if (hard) clearTimeout(hard);
            const cell = k.current;
            k.current = null;
            sendResults(req.id, Array.isArray(ev.results) ? ev.results : []);
            send({
              id: req.id,
              type: "cell",
              error: cellError(ev.error),
              timedOut: timedOut || ev.timedOut === true,
              truncated: cell.truncated,
              durationMs: Date.now() - started,
            });
            resolve();
          },
        };
        if (k.group) {
          try {
            bashKernel().send(k, req);
          } catch (e) {
            k.current.done({ results: [], error: { name: "Error", value: `bash: ${e.message}` } });
          }
          return;
        }
        const { nonce } = k.current;
        const env = req.env && typeof req.env === "object" ? req.env : undefined;
        const message = { id: req.id, nonce, code: String(req.code || ""), timeoutMs: req.timeoutMs, typescript, env };
        k.child.stdio[3].write(`${JSON.stringify(message)}\n`);
      }),
  );
}

const ROOT = "/workspace";

function send(event) {
  const line = JSON.stringify(event);
  // Never reached by construction; a line over the limit would end the session.
  if (line.length > LINE_CHARS) return fail(event.id, "INTERNAL", `${event.type}: message too long`);
  process.stdout.write(`${line}\n`);
}

function fail(id, code, message) {
  send({ id, type: "error", code: String(code).slice(0, 64), message: String(message).slice(0, 1000) });
}

/** Output bytes as text pieces; the decoder keeps a character split across reads whole. */
function sendOutput(id, type, bytes, decoder) {
  for (let at = 0; at < bytes.length; at += OUTPUT_PIECE) {
    const data = decoder.write(bytes.subarray(at, at + OUTPUT_PIECE));
    if (data) send({ id, type, data });
  }
}

/** Bytes as base64 pieces that each fit a line. */
function sendData(id, bytes) {
  for (let at = 0; at < bytes.length; at += DATA_PIECE)
    send({ id, type: "data", data: bytes.subarray(at, at + DATA_PIECE).toString("base64") });
}

/** Reads an open file up to `cap` bytes; null when it holds more (it may grow while read). */
function readCapped(fd, cap) {
  const pieces = [];
  let total = 0;
  const buf = Buffer.alloc(DATA_PIECE);
  let n;
  while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) {
    total += n;
    if (total > cap) return null;
    pieces.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(pieces);
}

/** A cell's rich results as pieces, each bundle and the cell within bounds (else a note). */
function sendResults(id, results) {
  let total = 0;
  for (const r of results.slice(0, MAX_RESULTS)) {
    const entries = Object.entries((r && r.data) || {})
      .filter(([mime]) => MIME_TYPE.test(mime))
      .slice(0, MAX_MIMES)
      .map(([mime, value]) => [mime, typeof value === "string" ? value : JSON.stringify(value) || ""]);
    const size = entries.reduce((n, [, v]) => n + Buffer.byteLength(v), 0);
    const fits = size <= RESULT_BYTES && total + size <= CELL_RESULT_BYTES;
    const data = fits
      ? entries
      : [["text/plain", `<result too large: ${size} bytes (at most ${RESULT_BYTES} each, ${CELL_RESULT_BYTES} per cell)>`]];
    total += fits ? size : 0;
    const metadata = plainMetadata(r && r.metadata);
    send({ id, type: "result", isMainResult: Boolean(r && r.isMainResult === true), ...(metadata ? { metadata } : {}) });
    for (const [mime, value] of data) {
      for (let at = 0; at < value.length || at === 0; ) {
        let end = Math.min(at + MIME_PIECE, value.length);
        // Do not split a surrogate pair between two pieces.
        const last = value.charCodeAt(end - 1);
        if (end < value.length && last >= 0xd800 && last <= 0xdbff) end--;
        send({ id, type: "mime", mime, data: value.slice(at, end) });
        at = end;
        if (end >= value.length) break;
      }
    }
  }
}

/**
 * A result's metadata as the host takes it: two levels of plain values
 * (strings up to 1024), keys up to 128, METADATA_CHARS in all; else none.
 */
function plainMetadata(m) {
  const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  const plain = (v) => v === null || ["number", "boolean"].includes(typeof v) || (typeof v === "string" && v.length <= 1024);
  if (!isMap(m)) return null;
  let size = 0;
  for (const [key, value] of Object.entries(m)) {
    if (key.length > 128) return null;
    size += key.length + 8;
    if (isMap(value)) {
      for (const [k, v] of Object.entries(value)) {
        if (k.length > 128 || !plain(v)) return null;
        size += k.length + 8 + String(v).length;
      }
    } else if (plain(value)) size += String(value).length;
    else return null;
  }
  return size > 0 && size <= METADATA_CHARS ? m : null;
}

function cellError(e) {
  if (!e || typeof e !== "object") return null;
  const text = (v, n) => String(v == null ? "" : v).slice(0, n);
  return { name: text(e.name, 256), value: text(e.value, ERROR_CHARS), traceback: text(e.traceback, ERROR_CHARS) };
}

/** Paths are relative to /workspace and may not climb out of it (lexically). */
function resolvePath(p) {
  if (typeof p !== "string" || p.includes("\0"))
    throw Object.assign(new Error("path: invalid"), { code: "INVALID_REQUEST" });
  const full = path.resolve(ROOT, p.replace(/^\/+/, ""));
  if (full !== ROOT && !full.startsWith(`${ROOT}/`))
    throw Object.assign(new Error("path: must stay under /workspace"), { code: "INVALID_REQUEST" });
  return full;
}

/** Running exec requests by id, for stdin and signals. */
const procs = new Map();

function exec(req) {
  const started = Date.now();
  const argv = req.shell != null ? ["/bin/sh", "-c", String(req.shell)] : req.argv;
  if (!Array.isArray(argv) || argv.length === 0)
    return fail(req.id, "INVALID_REQUEST", "command: empty");
  let cwd;
  try {
    cwd = resolvePath(req.cwd || ".");
  } catch (e) {
    return fail(req.id, e.code || "INVALID_REQUEST", e.message);
  }
  const child = spawn(argv[0], argv.slice(1), {
    cwd,
    env: { ...process.env, ...(req.env || {}) },
    stdio: ["pipe", "pipe", "pipe"],
    detached: true, // its own process group, so a timeout kills what it started too
  });
  const cap = req.outputBytes || 1 << 20;
  const sent = { stdout: 0, stderr: 0 };
  let truncated = false;
  let timedOut = false;
  // One final event per request: the host ends the session on an answer to an id it no longer awaits.
  let finished = false;
  const finish = (event) => {
    if (finished) return;
    finished = true;
    send(event);
  };
  const pipe = (stream, name) => {
    const decoder = new StringDecoder("utf8");
    stream.on("data", (d) => {
      if (sent[name] >= cap) {
        truncated = true;
        return;
      }
      const room = cap - sent[name];
      const chunk = d.length > room ? d.subarray(0, room) : d;
      if (d.length > room) truncated = true;
      sent[name] += chunk.length;
      sendOutput(req.id, name, chunk, decoder);
    });
    // A program that ends mid-character: its last bytes come out as U+FFFD, not lost.
    stream.on("end", () => {
      const rest = decoder.end();
      if (rest) send({ id: req.id, type: name, data: rest });
    });
  };
  pipe(child.stdout, "stdout");
  pipe(child.stderr, "stderr");
  child.stdin.on("error", () => {});
  if (req.keepStdin) {
    if (req.stdin) child.stdin.write(req.stdin);
  } else child.stdin.end(req.stdin || "");
  procs.set(req.id, child);
  const timer =
    req.timeoutMs === 0
      ? null
      : setTimeout(() => {
          timedOut = true;
          try {
            process.kill(-child.pid, "SIGKILL");
          } catch {}
        }, req.timeoutMs || 60000);
  child.on("error", (e) => {
    clearTimeout(timer);
    procs.delete(req.id);
    const message = `command: ${e.code === "ENOENT" ? `${argv[0]} not found` : e.message}`;
    finish({ id: req.id, type: "error", code: "INVALID_REQUEST", message: message.slice(0, 1000) });
  });
  child.on("close", (code, signal) => {
    clearTimeout(timer);
    procs.delete(req.id);
    finish({
      id: req.id,
      type: "exit",
      exitCode: code,
      signal,
      timedOut,
      truncated,
      durationMs: Date.now() - started,
    });
  });
}

/** Artifacts: files under /workspace/output changed since `since`, read without following links. */
function collect(req) {
  let found = 0;
  // A header per file, then its bytes as pieces.
  const report = (file, content) => {
    found++;
    send({ id: req.id, type: "artifact", read: content !== undefined, ...file });
    if (content) sendData(req.id, content);
  };
  let read = 0;
  let budget = req.maxTotal;
  const walk = (dir, prefix, depth) => {
    let names;
    try {
      names = fs.readdirSync(dir);
    } catch {
      return;
    }
    for (const entry of names) {
      if (found >= 1000) return;
      const full = path.join(dir, entry);
      const name = prefix ? `${prefix}/${entry}` : entry;
      let st;
      try {
        st = fs.lstatSync(full);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        if (depth < 8) walk(full, name, depth + 1);
        continue;
      }
      if (st.mtimeMs < req.since) continue;
      if (!st.isFile()) {
        const what = st.isSymbolicLink() ? "a symbolic link" : "not a regular file";
        report({ name, size: 0, problem: `${what}: only regular files are collected` });
        continue;
      }
      if (st.size > req.maxBytes || read >= req.maxCount || st.size > budget) {
        report({ name, size: st.size });
        continue;
      }
      let fd;
      try {
        fd = fs.openSync(full, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
        // The file may have grown since lstat: read no more than may be kept.
        const cap = Math.min(req.maxBytes, budget);
        const content = readCapped(fd, cap);
        if (content === null) {
          report({ name, size: Math.max(st.size, cap + 1) });
          continue;
        }
        read++;
        budget -= content.length;
        report({ name, size: content.length }, content);
      } catch (e) {
        report({ name, size: st.size, problem: `could not be read: ${e.code || e.message}` });
      } finally {
        if (fd !== undefined) fs.closeSync(fd);
      }
    }
  };
  const root = path.join(ROOT, "output");
  try {
    if (fs.lstatSync(root).isDirectory()) walk(root, "", 0);
  } catch {}
  send({ id: req.id, type: "collected" });
}

/** Named contexts: made with a working directory, restarted or closed (their kernel killed). */
function contextOp(req) {
  const id = String(req.context || "");
  if (!CONTEXT_ID.test(id)) return fail(req.id, "INVALID_REQUEST", "context: not a context id");
  if (req.op === "context-create") {
    if (!["python", "javascript", "typescript", "bash"].includes(req.language))
      return fail(req.id, "UNSUPPORTED_LANGUAGE", `language: no context for ${String(req.language).slice(0, 64)}`);
    const cwd = resolvePath(String(req.cwd || "."));
    let dir = false;
    try {
      dir = fs.statSync(cwd).isDirectory();
    } catch {}
    if (!dir) return fail(req.id, "NOT_FOUND", `cwd: ${cwd} is not a directory in the session`);
    namedContexts[id] = { language: req.language, cwd };
    return send({ id: req.id, type: "ok" });
  }
  const key = namedContexts[id] ? `ctx:${id}` : Object.hasOwn(KERNEL_NAMES, id) ? id : null;
  if (!key) return fail(req.id, "NOT_FOUND", `context ${id}: not found`);
  const k = kernels[key];
  if (k) {
    delete kernels[key]; // the next cell starts a fresh one; a running cell ends as KernelDied
    signalKernel(k, "SIGKILL");
  }
  if (req.op === "context-close") delete namedContexts[id];
  send({ id: req.id, type: "ok" });
}

/** Stops a request that is still running (the client went away or cancelled). */
function cancel(req) {
  workspace.unwatch(req.target);
  const child = procs.get(req.target);
  if (child) {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
  }
  for (const k of Object.values(kernels))
    if (k.current && k.current.id === req.target) signalKernel(k, "SIGINT");
  send({ id: req.id, type: "ok" });
}

/** Standard input and signals for a running command. */
function control(req) {
  const child = procs.get(req.target);
  if (!child) return fail(req.id, "NOT_FOUND", "command: not running");
  if (req.op === "stdin") {
    if (req.data) child.stdin.write(Buffer.from(String(req.data), "utf8"));
    if (req.eof) child.stdin.end();
  } else {
    try {
      process.kill(-child.pid, String(req.signal || "SIGTERM"));
    } catch (e) {
      return fail(req.id, "INVALID_REQUEST", `signal: ${e.message}`);
    }
  }
  send({ id: req.id, type: "ok" });
}

/** Joins a loopback port inside the sandbox to Warden's preview socket (web previews). */
function relay(req) {
  const port = Number(req.port);
  const app = net.connect({ host: "127.0.0.1", port });
  app.once("error", (e) =>
    fail(
      req.id,
      "UPSTREAM_UNAVAILABLE",
      `port ${port}: ${e.code === "ECONNREFUSED" ? "nothing is listening there in the session" : e.message}`,
    ),
  );
  app.once("connect", () => {
    app.removeAllListeners("error");
    const warden = net.connect(String(req.socket));
    let answered = false;
    const drop = () => {
      app.destroy();
      warden.destroy();
    };
    app.on("error", drop);
    warden.on("error", (e) => {
      if (!answered) fail(req.id, "INTERNAL", `preview relay: ${e.message}`);
      answered = true;
      drop();
    });
    warden.once("connect", () => {
      answered = true;
      warden.write(`${req.token}\n`);
      app.pipe(warden);
      warden.pipe(app);
      send({ id: req.id, type: "ok" });
    });
  });
}

function fileOp(req) {
  const full = resolvePath(req.path || ".");
  switch (req.op) {
    case "write": {
      fs.mkdirSync(path.dirname(full), { recursive: true });
      // O_NOFOLLOW: replace a planted link rather than write through it.
      try {
        if (fs.lstatSync(full).isSymbolicLink()) fs.unlinkSync(full);
      } catch {}
      fs.writeFileSync(full, Buffer.from(req.content || "", "base64"), { mode: req.mode || 0o644 });
      return send({ id: req.id, type: "ok" });
    }
    case "read": {
      const fd = fs.openSync(full, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      let content;
      try {
        const st = fs.fstatSync(fd);
        if (!st.isFile())
          throw Object.assign(new Error("path: not a regular file"), { code: "INVALID_REQUEST" });
        content = st.size > req.maxBytes ? null : readCapped(fd, req.maxBytes);
        if (content === null)
          throw Object.assign(
            new Error(`path: file is ${st.size} bytes, more than ${req.maxBytes}`),
            { code: "QUOTA_EXCEEDED" },
          );
      } finally {
        fs.closeSync(fd);
      }
      sendData(req.id, content);
      return send({ id: req.id, type: "file", size: content.length });
    }
    case "list": {
      const entries = fs
        .readdirSync(full, { withFileTypes: true })
        .slice(0, 10000)
        .map((e) => {
          let st = null;
          try {
            st = fs.lstatSync(path.join(full, e.name));
          } catch {}
          const type = e.isDirectory()
            ? "directory"
            : e.isSymbolicLink()
              ? "symlink"
              : e.isFile()
                ? "file"
                : "other";
          return {
            name: e.name,
            type,
            size: st ? st.size : 0,
            mtime: st ? st.mtime.toISOString() : null,
          };
        });
      for (let at = 0; at < entries.length; at += LIST_BATCH)
        send({ id: req.id, type: "entries", entries: entries.slice(at, at + LIST_BATCH) });
      return send({ id: req.id, type: "list" });
    }
    case "delete":
      if (full === ROOT)
        throw Object.assign(new Error("path: cannot delete /workspace itself"), {
          code: "INVALID_REQUEST",
        });
      fs.rmSync(full, { recursive: true });
      return send({ id: req.id, type: "ok" });
    case "mkdir":
      fs.mkdirSync(full, { recursive: true });
      return send({ id: req.id, type: "ok" });
    case "stat":
      return statPath(req, full);
    case "move":
      return movePath(req, full);
    default:
      return fail(req.id, "INVALID_REQUEST", `op: unknown ${req.op}`);
  }
}

const within = (p) => p === ROOT || p.startsWith(`${ROOT}/`);

/**
 * lstat of a path (null when missing) and where it leads: `inside` when the
 * directory holding it (the deepest one that exists) resolves under
 * /workspace, `real` what the whole path resolves to, relative to /workspace,
 * or null (missing, dangling, or out of it). The E2B adapter refuses names
 * whose directory is a link out of the workspace (docs/e2b.md).
 */
function statPath(req, full) {
  let st = null;
  try {
    st = fs.lstatSync(full);
  } catch (e) {
    if (e.code !== "ENOENT" && e.code !== "ENOTDIR") throw e;
  }
  let inside = full === ROOT;
  for (let dir = path.dirname(full); !inside; dir = path.dirname(dir)) {
    try {
      inside = within(fs.realpathSync(dir));
      break;
    } catch {
      if (!within(dir) || dir === ROOT) break; // nothing of it exists inside: refused
    }
  }
  let real = null;
  try {
    const r = st ? fs.realpathSync(full) : null;
    if (r && within(r)) real = r === ROOT ? "." : r.slice(ROOT.length + 1);
  } catch {}
  const entry = st && {
    type: st.isDirectory() ? "directory" : st.isSymbolicLink() ? "symlink" : st.isFile() ? "file" : "other",
    size: st.size,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtime: st.mtime.toISOString(),
    target: st.isSymbolicLink() ? fs.readlinkSync(full).slice(0, 4096) : null,
  };
  send({ id: req.id, type: "stat", entry, inside, real });
}

/** rename(2), the destination's directories made first; /workspace itself stays. */
function movePath(req, full) {
  const to = resolvePath(req.destination || "");
  if (full === ROOT || to === ROOT)
    throw Object.assign(new Error("path: cannot move /workspace itself"), { code: "INVALID_REQUEST" });
  fs.lstatSync(full); // a missing source is NOT_FOUND before any directory is made
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.renameSync(full, to);
  send({ id: req.id, type: "ok" });
}

// Snapshots, restores and file watches (docs/pause.md).
const workspace = require("./agent-workspace.cjs")({ send, fail, resolvePath, ROOT, DATA_PIECE });

const ERRNO = {
  ENOENT: "NOT_FOUND",
  ENOTDIR: "NOT_FOUND",
  EISDIR: "INVALID_REQUEST",
  ENOSPC: "QUOTA_EXCEEDED",
  EACCES: "PERMISSION_DENIED",
  EPERM: "PERMISSION_DENIED",
  ELOOP: "INVALID_REQUEST",
  ENOTEMPTY: "INVALID_REQUEST",
};

let prefixesMade = false;
readline.createInterface({ input: process.stdin }).on("line", (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    return;
  }
  // The prefixes are made before the first call that is not a restore: a restored
  // workspace brings its own venv (its links to the system's python come back here).
  if (!prefixesMade && !String(req.op).startsWith("restore")) {
    prefixesMade = true;
    try {
      preparePrefixes();
    } catch (e) {
      // Without the venv, python and pip are the system's: installs are refused (PEP 668), nothing else breaks.
      process.stderr.write(`warden agent: no session venv: ${e.message}\n`);
    }
    // The session's own context starts now, in the background, so its first cell
    // does not wait for the interpreter (sessions.prestartContext).
    const prestart = process.env.WARDEN_PRESTART && kernelOf(process.env.WARDEN_PRESTART);
    if (prestart && !kernels[prestart])
      try {
        kernels[prestart] = startKernel(prestart);
      } catch {} // the first cell reports why
  }
  try {
    if (req.op === "exec") exec(req);
    else if (req.op === "run") runCell(req);
    else if (req.op === "relay") relay(req);
    else if (req.op === "collect") collect(req);
    else if (req.op === "snapshot") void workspace.snapshot(req);
    else if (req.op === "restore") workspace.restoreStart(req);
    else if (req.op === "restore-data" || req.op === "restore-end") workspace.restoreMore(req);
    else if (req.op === "watch") workspace.watch(req);
    else if (req.op === "cancel") cancel(req);
    else if (String(req.op).startsWith("context-")) contextOp(req);
    else if (req.op === "stdin" || req.op === "signal") control(req);
    else fileOp(req);
  } catch (e) {
    const code =
      e.code && ERRNO[e.code]
        ? ERRNO[e.code]
        : e.code && e.code.includes("_")
          ? e.code
          : "INVALID_REQUEST";
    fail(req.id, code, e.code && ERRNO[e.code] ? `path: ${e.code.toLowerCase()}` : e.message);
  }
});

/**
 * The session's own install prefixes, in its workspace (so what is installed
 * counts against its disk limit): a venv layered on the system's Python and
 * the chosen environment (--system-site-packages), and an npm prefix. Warden
 * sets VIRTUAL_ENV, PATH and NPM_CONFIG_PREFIX; this writes the venv the way
 * `python3 -m venv --without-pip` would, in well under a millisecond instead
 * of ~0.2 s, and pip is the system's own run by the venv's python. An
 * existing venv (restored from a snapshot, or the user's) is kept.
 */
function preparePrefixes() {
  const venv = process.env.VIRTUAL_ENV;
  const base = process.env.WARDEN_PYTHON_BASE;
  if (!venv || !base || fs.existsSync(path.join(venv, "bin", "python3"))) return;
  const version = /python(\d+\.\d+)$/.exec(base);
  const bin = path.join(venv, "bin");
  fs.mkdirSync(bin, { recursive: true });
  // The site dir must exist when a python starts, or what pip puts there later is not on its path.
  if (version) fs.mkdirSync(path.join(venv, "lib", `python${version[1]}`, "site-packages"), { recursive: true });
  fs.writeFileSync(
    path.join(venv, "pyvenv.cfg"),
    `home = ${path.dirname(base)}\ninclude-system-site-packages = true\n${version ? `version = ${version[1]}\n` : ""}`,
  );
  for (const name of ["python", "python3", ...(version ? [`python${version[1]}`] : [])]) {
    const link = path.join(bin, name);
    fs.rmSync(link, { force: true });
    fs.symlinkSync(base, link);
  }
  const pip = `#!${path.join(bin, "python3")}\nimport sys\nfrom pip._internal.cli.main import main\nsys.exit(main())\n`;
  for (const name of ["pip", "pip3"]) fs.writeFileSync(path.join(bin, name), pip, { mode: 0o755 });
  fs.writeFileSync(
    path.join(bin, "activate"),
    `# Warden's session venv is active already (PATH, VIRTUAL_ENV); sourcing this changes nothing.\nexport VIRTUAL_ENV=${venv}\ndeactivate () { :; }\n`,
  );
}

send({ type: "ready" });
