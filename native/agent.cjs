// warden session agent: runs inside a session's sandbox as the long-lived
// program under warden-init. It reads JSON requests, one per line, on stdin
// and answers with JSON events, one per line, on stdout:
//   exec   {id, op, argv | shell, cwd, env, stdin, keepStdin, timeoutMs (0 = none), outputBytes}
//          → {id, type: "stdout" | "stderr", data}* then {id, type: "exit", exitCode, signal, timedOut, truncated, durationMs}
//   write  {id, op, path, content (base64), mode} → {id, type: "ok"}
//   read   {id, op, path, maxBytes}               → {id, type: "file", content (base64), size}
//   list   {id, op, path}                         → {id, type: "list", entries: [{name, type, size, mtime}]}
//   delete {id, op, path} / mkdir {id, op, path}  → {id, type: "ok"}
//   collect {id, op, since, maxBytes, maxCount, maxTotal}
//          → {id, type: "artifact", name, size, content (base64)?, problem?}* then {id, type: "collected"}:
//          regular files under /workspace/output changed since `since` (ms), never following links
//   cancel {id, op, target}                       → {id, type: "ok"}: kills a running exec's process
//          group, or interrupts a running cell (KeyboardInterrupt)
//   stdin  {id, op, target, data, eof}            → {id, type: "ok"}  (to a running exec)
//   signal {id, op, target, signal}               → {id, type: "ok"}  (to its whole process group)
//   relay  {id, op, port, socket, token}           → {id, type: "ok"} once 127.0.0.1:port inside
//          is joined to Warden's preview socket (which this agent dials, announcing the token)
// Errors: {id, type: "error", code, message}. Everything it touches is the
// sandbox's own: the host never opens a path the sandbox controls.
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const path = require("node:path");
const readline = require("node:readline");

/** Persistent code contexts (python, javascript), each started on first use; one cell at a time. */
const kernels = {};
let cellChain = Promise.resolve();

function kernelCommand(language) {
  if (language === "javascript") return [process.execPath, ["/.warden/lib/kernel.cjs"]];
  const python = process.env.WARDEN_PYTHON;
  if (!python)
    throw Object.assign(new Error("language: python is not available in this session"), {
      code: "UNSUPPORTED_LANGUAGE",
    });
  return [python, ["-u", "/.warden/lib/kernel.py"]];
}

function startKernel(language) {
  const [command, args] = kernelCommand(language);
  const child = spawn(command, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe", "pipe"] });
  const k = { child, current: null, buffer: "" };
  const forward = (name) => (d) => {
    if (k.current) send({ id: k.current.id, type: name, data: d.toString("utf8") });
  };
  child.stdout.on("data", forward("stdout"));
  child.stderr.on("data", forward("stderr"));
  child.stdio[3].on("data", (d) => {
    k.buffer += d.toString("utf8");
    let nl;
    while ((nl = k.buffer.indexOf("\n")) >= 0) {
      const line = k.buffer.slice(0, nl);
      k.buffer = k.buffer.slice(nl + 1);
      try {
        const ev = JSON.parse(line);
        if (k.current && ev.id === k.current.id) k.current.done(ev);
      } catch {}
    }
  });
  child.on("exit", () => {
    if (kernels[language] === k) delete kernels[language];
    if (k.current)
      k.current.done({
        type: "result",
        results: [],
        error: {
          name: "KernelDied",
          value: "the Python context ended; its state is lost",
          traceback: "",
        },
      });
  });
  return k;
}

function runCell(req) {
  cellChain = cellChain.then(
    () =>
      new Promise((resolve) => {
        const started = Date.now();
        let k;
        try {
          const language = req.language === "javascript" ? "javascript" : "python";
          k = kernels[language] || (kernels[language] = startKernel(language));
        } catch (e) {
          fail(req.id, e.code, e.message);
          return resolve();
        }
        let timedOut = false;
        let hard = null;
        const timer = setTimeout(() => {
          timedOut = true;
          k.child.kill("SIGINT"); // KeyboardInterrupt in the cell; state survives
          hard = setTimeout(() => k.child.kill("SIGKILL"), 2000); // it would not stop: restart
        }, req.timeoutMs || 60000);
        k.current = {
          id: req.id,
          done: (ev) => {
            clearTimeout(timer);
            if (hard) clearTimeout(hard);
            k.current = null;
            send({
              id: req.id,
              type: "cell",
              results: ev.results || [],
              error: ev.error || null,
              timedOut: timedOut || ev.timedOut === true,
              durationMs: Date.now() - started,
            });
            resolve();
          },
        };
        k.child.stdio[3].write(`${JSON.stringify({ id: req.id, code: String(req.code || ""), timeoutMs: req.timeoutMs })}\n`);
      }),
  );
}

const ROOT = "/workspace";

function send(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function fail(id, code, message) {
  send({ id, type: "error", code, message });
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
  const pipe = (stream, name) =>
    stream.on("data", (d) => {
      if (sent[name] >= cap) {
        truncated = true;
        return;
      }
      const room = cap - sent[name];
      const chunk = d.length > room ? d.subarray(0, room) : d;
      if (d.length > room) truncated = true;
      sent[name] += chunk.length;
      send({ id: req.id, type: name, data: chunk.toString("utf8") });
    });
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
    fail(
      req.id,
      "INVALID_REQUEST",
      `command: ${e.code === "ENOENT" ? `${argv[0]} not found` : e.message}`,
    );
  });
  child.on("close", (code, signal) => {
    clearTimeout(timer);
    procs.delete(req.id);
    send({
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
  // One message per file: a large file is one long line, not part of a larger one.
  const report = (file) => {
    found++;
    send({ id: req.id, type: "artifact", ...file });
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
        const content = fs.readFileSync(fd);
        read++;
        budget -= content.length;
        report({ name, size: content.length, content: content.toString("base64") });
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

/** Stops a request that is still running (the client went away or cancelled). */
function cancel(req) {
  const child = procs.get(req.target);
  if (child) {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
  }
  for (const k of Object.values(kernels))
    if (k.current && k.current.id === req.target) k.child.kill("SIGINT");
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
      const st = fs.statSync(full);
      if (!st.isFile())
        throw Object.assign(new Error("path: not a regular file"), { code: "INVALID_REQUEST" });
      if (st.size > req.maxBytes)
        throw Object.assign(
          new Error(`path: file is ${st.size} bytes, more than ${req.maxBytes}`),
          { code: "QUOTA_EXCEEDED" },
        );
      return send({
        id: req.id,
        type: "file",
        content: fs.readFileSync(full).toString("base64"),
        size: st.size,
      });
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
      return send({ id: req.id, type: "list", entries });
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
    default:
      return fail(req.id, "INVALID_REQUEST", `op: unknown ${req.op}`);
  }
}

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

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch {
    return;
  }
  try {
    if (req.op === "exec") exec(req);
    else if (req.op === "run") runCell(req);
    else if (req.op === "relay") relay(req);
    else if (req.op === "collect") collect(req);
    else if (req.op === "cancel") cancel(req);
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
send({ type: "ready" });
