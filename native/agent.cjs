// warden session agent: runs inside a session's sandbox as the long-lived
// program under warden-init. It reads JSON requests, one per line, on stdin
// and answers with JSON events, one per line, on stdout:
//   exec   {id, op, argv | shell, cwd, env, stdin, timeoutMs, outputBytes}
//          → {id, type: "stdout" | "stderr", data}* then {id, type: "exit", exitCode, signal, timedOut, truncated, durationMs}
//   write  {id, op, path, content (base64), mode} → {id, type: "ok"}
//   read   {id, op, path, maxBytes}               → {id, type: "file", content (base64), size}
//   list   {id, op, path}                         → {id, type: "list", entries: [{name, type, size, mtime}]}
//   delete {id, op, path} / mkdir {id, op, path}  → {id, type: "ok"}
// Errors: {id, type: "error", code, message}. Everything it touches is the
// sandbox's own: the host never opens a path the sandbox controls.
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");

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
  child.stdin.end(req.stdin || "");
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {}
  }, req.timeoutMs || 60000);
  child.on("error", (e) => {
    clearTimeout(timer);
    fail(
      req.id,
      "INVALID_REQUEST",
      `command: ${e.code === "ENOENT" ? `${argv[0]} not found` : e.message}`,
    );
  });
  child.on("close", (code, signal) => {
    clearTimeout(timer);
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
