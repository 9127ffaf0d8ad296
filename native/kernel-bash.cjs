// warden bash context, for the session agent: a persistent interactive bash
// (rc file kernel.bash) per session. Each cell is written to a private file
// and named on bash's stdin with a fresh random marker; bash answers
// `MARKER STATUS` on fd 3 when the cell is over. A line with another marker
// (code in a cell can write to that fd) answers nothing: a cell cannot end
// another one, and the host bounds whatever comes out anyway.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");

const RC = "/.warden/lib/kernel.bash";
const CELLS = "/tmp/.warden-bash";

function command() {
  const bash = ["/bin/bash", "/usr/bin/bash"].find((p) => fs.existsSync(p));
  if (!bash)
    throw Object.assign(new Error("language: bash is not available in this session"), {
      code: "UNSUPPORTED_LANGUAGE",
    });
  // -i: an interrupt abandons the running cell and returns to the prompt, as in a terminal.
  return [bash, ["--noprofile", "--rcfile", RC, "--noediting", "-i"]];
}

/** Sends a cell; remembers its marker and file on the kernel record `k`. */
function send(k, req) {
  fs.mkdirSync(CELLS, { recursive: true, mode: 0o700 });
  k.marker = crypto.randomBytes(16).toString("hex");
  k.file = path.join(CELLS, k.marker);
  fs.writeFileSync(k.file, String(req.code || ""), { mode: 0o600 });
  k.child.stdin.write(`__warden_cell ${k.marker} ${k.file}\n`);
}

/** The kernel's answer for a line on fd 3, or null when it is not this cell's end. */
function answer(k, line) {
  const [marker, status] = line.trim().split(" ");
  if (!k.current || !k.marker || marker !== k.marker || !/^\d{1,3}$/.test(status || "")) return null;
  k.marker = null;
  fs.rm(k.file, { force: true }, () => {});
  const code = Number(status);
  const error =
    code === 0
      ? null
      : { name: "ExitStatus", value: `the cell's last command exited with status ${code}`, traceback: "" };
  return { id: k.current.id, type: "result", results: [], error };
}

module.exports = { command, send, answer };
