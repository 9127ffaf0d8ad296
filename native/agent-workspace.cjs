// The session agent's workspace ops (docs/pause.md), bundled into agent.cjs at
// build (scripts/build-native.sh). Like the rest of the agent, what they send
// is checked by the host (src/sessions/agent-protocol.ts, tar-check.ts).
"use strict";
const fs = require("node:fs");
const path = require("node:path");

// Ops, as JSON lines (the agent dispatches them here):
//   snapshot {id, op, maxBytes, maxEntries}
//          → {id, type: "data", data}* (a POSIX tar of /workspace), {id, type: "packages", packages}*
//            then {id, type: "snapshot", skipped}: never follows a link; what an archive may not
//            hold (devices, sockets, links out) is left out and counted
//   restore {id, op, maxEntries}, then {op: "restore-data", target: id, data (base64)}* and
//          {op: "restore-end", target: id}            → {id, type: "ok"}: extracts the archive into
//          /workspace as it comes, with the host's rules (src/sessions/tar-check.ts)
//   watch  {id, op, path, recursive}               → {id, type: "watching"}, {id, type: "change", kind, path, entry}* until
//          cancelled ({id, type: "ok"}) or the directory goes (an error)
module.exports = function workspaceOps({ send, fail, resolvePath, ROOT, DATA_PIECE }) {
  const TAR_BLOCK = 512;
  const TAR_PATH_BYTES = 4096;
  const MAX_PACKAGES = 5000;
  const PACKAGE_BATCH = 200;

  function snapshotRefusal(message) {
    return Object.assign(new Error(message), { code: "INVALID_REQUEST" });
  }

  /** The rules of src/sessions/tar-check.ts: relative, no '.', '..' or empty segment. */
  function plainPath(p) {
    if (!p || Buffer.byteLength(p) > TAR_PATH_BYTES || p.includes("\0") || p.startsWith("/")) return false;
    return p.split("/").every((part) => part !== "" && part !== "." && part !== "..");
  }

  /** A link target that stays inside: relative, no '..' anywhere. */
  function plainTarget(t) {
    return Boolean(t) && Buffer.byteLength(t) <= TAR_PATH_BYTES && !t.includes("\0") && !t.startsWith("/") && !t.split("/").includes("..");
  }

  function octalField(buf, at, length, value) {
    buf.write(value.toString(8).padStart(length - 1, "0") + "\0", at, length, "latin1");
  }

  function paxRecord(key, value) {
    const body = ` ${key}=${value}\n`;
    const n = Buffer.byteLength(body);
    let len = n + String(n).length;
    if (String(len).length > String(n).length) len++;
    return `${len}${body}`;
  }

  /** A ustar header (and a pax header before it for a long name or target). */
  function tarHeaders(name, type, size, mode, mtime, target) {
    const out = [];
    let pax = "";
    if (Buffer.byteLength(name) > 100) pax += paxRecord("path", name);
    if (target && Buffer.byteLength(target) > 100) pax += paxRecord("linkpath", target);
    if (pax) {
      const body = Buffer.from(pax, "utf8");
      out.push(tarBlock("PaxHeader", "x", body.length, 0o644, mtime, ""));
      out.push(body, Buffer.alloc((TAR_BLOCK - (body.length % TAR_BLOCK)) % TAR_BLOCK));
    }
    out.push(tarBlock(name, type, size, mode, mtime, target || ""));
    return out;
  }

  function tarBlock(name, type, size, mode, mtime, target) {
    const b = Buffer.alloc(TAR_BLOCK);
    if (Buffer.byteLength(name) <= 100) b.write(name, 0, 100, "utf8");
    octalField(b, 100, 8, mode & 0o777);
    octalField(b, 108, 8, 0);
    octalField(b, 116, 8, 0);
    octalField(b, 124, 12, size);
    octalField(b, 136, 12, Math.max(0, Math.floor(mtime)));
    b.write(type, 156, 1, "latin1");
    if (Buffer.byteLength(target) <= 100) b.write(target, 157, 100, "utf8");
    b.write("ustar\0", 257, 6, "latin1");
    b.write("00", 263, 2, "latin1");
    b.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of b) sum += byte;
    b.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "latin1");
    return b;
  }

  /** Writes a line and waits while the host is behind: the archive is never held whole here. */
  function sendPaced(event) {
    const line = `${JSON.stringify(event)}\n`;
    if (process.stdout.write(line)) return Promise.resolve();
    return new Promise((resolve) => process.stdout.once("drain", resolve));
  }

  /** Installed packages of a venv or an npm prefix in the workspace, read from their metadata. */
  function workspacePackages() {
    const found = [];
    const add = (manager, name, version) => {
      if (found.length < MAX_PACKAGES && name && version)
        found.push({ manager, name: String(name).slice(0, 214), version: String(version).slice(0, 64) });
    };
    const dirs = (dir) => {
      try {
        return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
      } catch {
        return [];
      }
    };
    for (const venv of dirs(ROOT)) {
      const base = path.join(ROOT, venv);
      if (!fs.existsSync(path.join(base, "pyvenv.cfg"))) continue;
      for (const lib of ["lib", "lib64"])
        for (const py of dirs(path.join(base, lib))) {
          const site = path.join(base, lib, py, "site-packages");
          for (const d of dirs(site)) {
            if (!d.endsWith(".dist-info")) continue;
            let meta = "";
            try {
              meta = fs.readFileSync(path.join(site, d, "METADATA"), "utf8").slice(0, 8192);
            } catch {}
            const field = (k) => (new RegExp(`^${k}: *(.+)$`, "m").exec(meta) || [])[1];
            add("pip", field("Name"), field("Version"));
          }
        }
    }
    const npm = (modules) => {
      for (const d of dirs(modules)) {
        if (d.startsWith(".")) continue;
        const scoped = d.startsWith("@") ? dirs(path.join(modules, d)).map((s) => `${d}/${s}`) : [d];
        for (const name of scoped)
          try {
            const pkg = JSON.parse(fs.readFileSync(path.join(modules, name, "package.json"), "utf8").slice(0, 1 << 20));
            add("npm", pkg.name, pkg.version);
          } catch {}
      }
    };
    npm(path.join(ROOT, "node_modules"));
    for (const d of dirs(ROOT)) {
      npm(path.join(ROOT, d, "node_modules"));
      npm(path.join(ROOT, d, "lib", "node_modules"));
    }
    return found;
  }

  /** Streams a tar of /workspace as data pieces, at most maxBytes, never following a link. */
  async function snapshot(req) {
    const maxBytes = Number(req.maxBytes) || 0;
    const maxEntries = Number(req.maxEntries) || 0;
    let sent = 0;
    let entries = 0;
    let skipped = 0;
    let pieces = [];
    let held = 0;
    const flush = async () => {
      if (held === 0) return;
      const all = Buffer.concat(pieces);
      pieces = [];
      held = 0;
      for (let at = 0; at < all.length; at += DATA_PIECE)
        await sendPaced({ id: req.id, type: "data", data: all.subarray(at, at + DATA_PIECE).toString("base64") });
    };
    const out = async (buf) => {
      if (sent + buf.length > maxBytes)
        throw Object.assign(new Error(`workspace: the snapshot would be over ${maxBytes} bytes (sessions.maxSnapshotMb)`), {
          code: "QUOTA_EXCEEDED",
        });
      sent += buf.length;
      pieces.push(buf);
      held += buf.length;
      if (held >= DATA_PIECE) await flush();
    };
    const entry = () => {
      if (++entries > maxEntries)
        throw Object.assign(new Error(`workspace: more than ${maxEntries} files and directories for a snapshot`), {
          code: "QUOTA_EXCEEDED",
        });
    };
    const walk = async (dir, prefix) => {
      let names;
      try {
        names = fs.readdirSync(dir).sort();
      } catch {
        return;
      }
      for (const name of names) {
        const rel = prefix ? `${prefix}/${name}` : name;
        const full = path.join(dir, name);
        let st;
        try {
          st = fs.lstatSync(full);
        } catch {
          continue;
        }
        if (!plainPath(rel)) {
          skipped++;
          continue;
        }
        if (st.isDirectory()) {
          entry();
          for (const b of tarHeaders(`${rel}/`, "5", 0, st.mode, st.mtimeMs / 1000)) await out(b);
          await walk(full, rel);
        } else if (st.isSymbolicLink()) {
          let target = "";
          try {
            target = fs.readlinkSync(full);
          } catch {}
          if (!plainTarget(target)) {
            skipped++;
            continue;
          }
          entry();
          for (const b of tarHeaders(rel, "2", 0, st.mode, st.mtimeMs / 1000, target)) await out(b);
        } else if (st.isFile()) {
          let fd;
          try {
            fd = fs.openSync(full, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
          } catch {
            skipped++;
            continue;
          }
          try {
            const size = fs.fstatSync(fd).size;
            entry();
            for (const b of tarHeaders(rel, "0", size, st.mode, st.mtimeMs / 1000)) await out(b);
            // Exactly `size` bytes, whatever the file does meanwhile (zeros if it shrank).
            let left = size;
            while (left > 0) {
              const buf = Buffer.alloc(Math.min(DATA_PIECE, left));
              const n = fs.readSync(fd, buf, 0, buf.length, null);
              await out(n > 0 ? buf.subarray(0, n) : buf);
              left -= n > 0 ? n : buf.length;
            }
            const pad = (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK;
            if (pad) await out(Buffer.alloc(pad));
          } finally {
            fs.closeSync(fd);
          }
        } else skipped++; // devices, fifos and sockets have no place in an archive
      }
    };
    try {
      await walk(ROOT, "");
      await out(Buffer.alloc(2 * TAR_BLOCK));
      await flush();
      const packages = workspacePackages();
      for (let at = 0; at < packages.length; at += PACKAGE_BATCH)
        await sendPaced({ id: req.id, type: "packages", packages: packages.slice(at, at + PACKAGE_BATCH) });
    } catch (e) {
      return fail(req.id, e.code && e.code.includes("_") ? e.code : "INTERNAL", e.message);
    }
    send({ id: req.id, type: "snapshot", skipped });
  }

  /** Restores in progress by request id: the archive comes in pieces on stdin. */
  const restores = new Map();

  /**
   * Extracts an archive Warden checked when it was made, checking it all again
   * as it goes: pieces arrive as `restore-data` lines, `restore-end` finishes.
   */
  function restoreStart(req) {
    const kinds = new Map([["", "directory"]]);
    const links = [];
    const st = { buf: Buffer.alloc(0), pax: {}, left: 0, pad: 0, out: null, paxBody: null, ended: false };
    const text = (block, at, len) => {
      const raw = block.subarray(at, at + len);
      const end = raw.indexOf(0);
      return raw.subarray(0, end < 0 ? len : end).toString("utf8");
    };
    const header = (block) => {
      if (block.every((b) => b === 0)) {
        st.ended = true;
        return;
      }
      if (st.ended) throw snapshotRefusal("snapshot: data after the archive's end");
      if (text(block, 257, 6) !== "ustar") throw snapshotRefusal("snapshot: not a POSIX tar header");
      const type = String.fromCharCode(block[156]);
      const size = parseInt(text(block, 124, 12).trim() || "x", 8);
      if (!Number.isSafeInteger(size) || size < 0) throw snapshotRefusal("snapshot: bad size");
      st.left = size;
      st.pad = (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK;
      if (type === "x") {
        if (size > 16 * 1024) throw snapshotRefusal("snapshot: pax header too long");
        st.paxBody = [];
        return;
      }
      const prefix = text(block, 345, 155);
      let name = st.pax.path || (prefix ? `${prefix}/${text(block, 0, 100)}` : text(block, 0, 100));
      const target = st.pax.linkpath || text(block, 157, 100);
      st.pax = {};
      if (name.endsWith("/")) name = name.slice(0, -1);
      if (!plainPath(name)) throw snapshotRefusal(`snapshot: path not allowed (${name.slice(0, 64)})`);
      const kind = type === "0" ? "file" : type === "5" ? "directory" : type === "2" ? "symlink" : null;
      if (!kind) throw snapshotRefusal(`snapshot: entry type '${type}' not allowed`);
      if (kind !== "file" && size !== 0) throw snapshotRefusal(`snapshot: a ${kind} with content`);
      if (kinds.has(name)) throw snapshotRefusal(`snapshot: ${name.slice(0, 64)} listed twice`);
      const dir = path.posix.dirname(name);
      if (kinds.get(dir === "." ? "" : dir) !== "directory")
        throw snapshotRefusal(`snapshot: ${name.slice(0, 64)}: its directory is not one`);
      if (kinds.size > (Number(req.maxEntries) || 0)) throw snapshotRefusal("snapshot: too many entries");
      kinds.set(name, kind);
      const full = path.join(ROOT, name);
      const mode = (parseInt(text(block, 100, 8).trim() || "0", 8) || 0) & 0o777;
      if (kind === "directory") {
        try {
          fs.mkdirSync(full, { mode: mode | 0o700 });
        } catch (e) {
          if (e.code !== "EEXIST" || !fs.lstatSync(full).isDirectory()) throw e;
        }
      } else if (kind === "symlink") {
        if (!plainTarget(target)) throw snapshotRefusal(`snapshot: link ${name.slice(0, 64)} points out`);
        links.push([target, full]); // made last: nothing is ever written through one
      } else {
        // O_EXCL and O_NOFOLLOW: a name that exists already is never written through.
        const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
        st.out = fs.openSync(full, flags, mode | 0o600);
        if (size === 0) {
          fs.closeSync(st.out);
          st.out = null;
        }
      }
    };
    const push = (piece) => {
      let data = st.buf.length ? Buffer.concat([st.buf, piece]) : piece;
      while (data.length > 0) {
        if (st.left > 0 || st.pad > 0) {
          const take = Math.min(data.length, st.left + st.pad);
          const content = Math.min(take, st.left);
          if (content > 0) {
            if (st.paxBody) st.paxBody.push(data.subarray(0, content));
            else if (st.out !== null) fs.writeSync(st.out, data.subarray(0, content));
          }
          st.left -= content;
          st.pad -= take - content;
          data = data.subarray(take);
          if (st.left === 0) {
            if (st.out !== null) {
              fs.closeSync(st.out);
              st.out = null;
            }
            if (st.paxBody) {
              const body = Buffer.concat(st.paxBody).toString("utf8");
              st.paxBody = null;
              st.pax = {};
              for (const m of body.matchAll(/^\d+ (path|linkpath)=(.*)$/gm)) st.pax[m[1]] = m[2];
            }
          }
          continue;
        }
        if (data.length < TAR_BLOCK) break;
        header(data.subarray(0, TAR_BLOCK));
        data = data.subarray(TAR_BLOCK);
      }
      st.buf = Buffer.from(data);
    };
    const close = () => {
      if (st.out !== null) fs.closeSync(st.out);
      st.out = null;
    };
    const finish = () => {
      close();
      if (!st.ended || st.left > 0 || st.pad > 0) throw snapshotRefusal("snapshot: the archive is cut short");
      for (const [target, full] of links) fs.symlinkSync(target, full);
    };
    restores.set(req.id, { push, finish, close });
  }

  /** A piece of a restore's archive, or its end; a failure answers the restore's id. */
  function restoreMore(req) {
    const r = restores.get(req.target);
    if (!r) return; // failed already (its error was sent) or unknown
    try {
      if (req.op === "restore-data") r.push(Buffer.from(String(req.data || ""), "base64"));
      else {
        restores.delete(req.target);
        r.finish();
        send({ id: req.target, type: "ok" });
      }
    } catch (e) {
      restores.delete(req.target);
      r.close();
      const code = e.code === "ENOSPC" ? "QUOTA_EXCEEDED" : e.code && e.code.includes("_") ? e.code : "INVALID_REQUEST";
      const message = e.code === "ENOSPC" ? "workspace: the snapshot does not fit the session's diskMb" : e.message;
      fail(req.target, code, message);
    }
  }

  /** Running watches by request id. */
  const watchers = new Map();
  const WATCH_FLUSH_MS = 100;
  const WATCH_PENDING = 256;

  function watch(req) {
    const rel = req.path && req.path !== "." ? String(req.path) : "";
    const full = rel ? resolvePath(rel) : ROOT;
    // The directory itself, resolved: a link out of /workspace is refused.
    const real = fs.realpathSync(full);
    if (real !== ROOT && !real.startsWith(`${ROOT}/`))
      throw Object.assign(new Error("path: leads out of /workspace"), { code: "INVALID_REQUEST" });
    if (!fs.statSync(real).isDirectory())
      throw Object.assign(new Error("path: not a directory"), { code: "INVALID_REQUEST" });
    const pending = new Map();
    let overflow = false;
    let timer = null;
    const flush = () => {
      timer = null;
      if (overflow) send({ id: req.id, type: "change", kind: "overflow", path: "", entry: null });
      overflow = false;
      for (const [p, how] of pending) {
        let st = null;
        try {
          st = fs.lstatSync(path.join(ROOT, p));
        } catch {}
        const entry = !st ? null : st.isDirectory() ? "directory" : st.isSymbolicLink() ? "symlink" : st.isFile() ? "file" : "other";
        const kind = !st ? "removed" : how === "rename" ? "created" : "modified";
        send({ id: req.id, type: "change", kind, path: p, entry });
      }
      pending.clear();
    };
    const w = fs.watch(real, { recursive: req.recursive === true }, (event, name) => {
      if (!name) return;
      const p = path.relative(ROOT, path.join(real, String(name)));
      if (!p || p.startsWith("..")) return;
      // Coalesced: one event per path per flush, a bounded number of paths.
      if (pending.has(p)) {
        if (event === "rename") pending.set(p, "rename");
      } else if (pending.size < WATCH_PENDING) pending.set(p, event);
      else overflow = true;
      if (!timer) timer = setTimeout(flush, WATCH_FLUSH_MS);
    });
    w.on("error", (e) => {
      watchers.delete(req.id);
      if (timer) clearTimeout(timer);
      fail(req.id, "NOT_FOUND", `watch: ${e.code || e.message}`);
    });
    watchers.set(req.id, () => {
      if (timer) clearTimeout(timer);
      w.close();
    });
    send({ id: req.id, type: "watching" });
  }

  /** Ends a watch (its stream gets its final ok); false when `target` is no watch. */
  function unwatch(target) {
    const stop = watchers.get(target);
    if (!stop) return false;
    watchers.delete(target);
    stop();
    send({ id: target, type: "ok" });
    return true;
  }


  return { snapshot, restoreStart, restoreMore, watch, unwatch };
};
