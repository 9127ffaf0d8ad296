/**
 * Agent stdout for the fuzz tier: well-formed answers to a request, and
 * hostile pieces that break the protocol wherever they land in the stream
 * (so the test knows, by construction, which streams must end the session).
 */
import { ANSWERS, type AgentEventType, type AgentOp } from "../../src/sessions/agent-protocol.js";
import type { Fuzz } from "./generators.js";

export interface Call {
  id: number;
  op: AgentOp;
  /** The stdout text a clean stream must deliver for this call. */
  record: { expected: string };
}

const line = (o: unknown): Buffer => Buffer.from(`${JSON.stringify(o)}\n`);
/** Text safe inside a JSON string as raw bytes, multibyte characters included. */
const TEXT = ["a", "Z", " ", "é", "€", "😀", "ß", "中", "\u202e", "\ufeff"];
/** Byte runs that are not UTF-8: each decodes to U+FFFD, and never swallows the ASCII after it. */
const NOT_UTF8 = [[0xff], [0xc3], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98], [0x80]];

function text(f: Fuzz, max: number): string {
  let out = "";
  for (let i = f.int(max); i > 0; i--) out += f.pick(TEXT);
  return out;
}

/** A valid instance of each event type, answering `id`. */
export function sample(f: Fuzz, type: AgentEventType, id: number): Record<string, unknown> {
  switch (type) {
    case "ready":
      return { type };
    case "stdout":
    case "stderr":
      return { id, type, data: text(f, 20) };
    case "exit":
      return {
        id,
        type,
        exitCode: f.pick([0, 1, null, 2 ** 31, Number.MAX_SAFE_INTEGER, -1]),
        signal: f.pick([null, "SIGKILL"]),
        timedOut: f.chance(0.5),
        truncated: f.chance(0.5),
        durationMs: f.pick([0, 1.5, 1e308]),
      };
    case "error":
      return { id, type, code: f.pick(["NOT_FOUND", "NO_SUCH_CODE", ""]), message: text(f, 30) };
    case "data":
      return { id, type, data: Buffer.from(text(f, 40)).toString("base64") };
    case "file":
      return { id, type, size: f.pick([0, 5, Number.MAX_SAFE_INTEGER]) };
    case "entries":
      return {
        id,
        type,
        entries: [{ name: text(f, 10) || "n", type: "file", size: f.int(1e9), mtime: null }],
      };
    case "artifact":
      return { id, type, name: text(f, 10), size: f.int(1e12), read: false };
    case "result":
      return { id, type, isMainResult: f.chance(0.5) };
    case "mime":
      return { id, type, mime: "text/plain", data: text(f, 40) };
    case "cell": {
      const error = { name: "E", value: text(f, 10), traceback: text(f, 10) };
      return {
        id,
        type,
        error: f.pick([null, error]),
        timedOut: false,
        truncated: false,
        durationMs: 1,
      };
    }
    case "packages":
      return { id, type, packages: [{ manager: "pip", name: "n", version: "1.0" }] };
    case "snapshot":
      return { id, type, skipped: f.int(10) };
    case "change":
      return { id, type, kind: "created", path: text(f, 10) || "n", entry: f.pick([null, "file"]) };
    case "stat":
      return {
        id,
        type,
        entry: f.chance(0.2)
          ? null
          : { type: "file", size: 3, mode: 0o644, uid: 1000, gid: 1000, mtime: null, target: null },
        inside: f.chance(0.5),
        real: f.pick([null, ".", "a/b"]),
      };
    case "ok":
    case "list":
    case "collected":
    case "watching":
      return { id, type };
  }
}

/** A stdout event whose line (without its newline) is `chars` long, or as close as the JSON allows. */
function paddedStdout(id: number, chars: number): Buffer {
  const empty = JSON.stringify({ id, type: "stdout", data: "" }).length;
  return line({ id, type: "stdout", data: "x".repeat(Math.max(0, chars - empty)) });
}

/** stdout with raw bytes that are not UTF-8 inside the string: they arrive as U+FFFD. */
function mangledStdout(f: Fuzz, call: Call): Buffer {
  const parts: Buffer[] = [];
  for (let i = 1 + f.int(6); i > 0; i--)
    parts.push(f.chance(0.5) ? Buffer.from(f.pick(NOT_UTF8)) : Buffer.from(text(f, 5)));
  const data = Buffer.concat(parts);
  call.record.expected += data.toString("utf8");
  const head = Buffer.from(`{"id":${call.id},"type":"stdout","data":"`);
  return Buffer.concat([head, data, Buffer.from('"}\n')]);
}

/** The lines of a well-formed answer to `call`, ending with its final event (or an error). */
export function validAnswer(f: Fuzz, call: Call, maxLine: number): Buffer[] {
  const { id, op } = call;
  const lines: Buffer[] = [];
  const stream = ANSWERS[op].stream.filter((t) => t !== "artifact" && t !== "data");
  for (let i = f.int(5); i > 0 && stream.length > 0; i--) {
    const type = f.pick(stream);
    if (type === "stdout" && f.chance(0.15)) {
      lines.push(mangledStdout(f, call));
      continue;
    }
    if (type === "stdout" && maxLine < 10_000 && f.chance(0.1)) {
      // A line exactly at the limit is still allowed.
      const at = paddedStdout(id, maxLine);
      call.record.expected += (JSON.parse(at.toString()) as { data: string }).data;
      lines.push(at);
      continue;
    }
    const event = sample(f, type, id);
    if (type === "stdout") call.record.expected += event.data as string;
    if (type === "mime" && !lines.some((l) => l.includes('"type":"result"')))
      lines.push(line(sample(f, "result", id)));
    lines.push(line(event));
  }
  if (op === "read" && f.chance(0.7)) lines.push(line(sample(f, "data", id)));
  if (op === "collect")
    for (let i = f.int(3); i > 0; i--) {
      lines.push(line({ id, type: "artifact", name: `a${i}`, size: 3, read: true }));
      lines.push(line({ id, type: "data", data: Buffer.from("abc").toString("base64") }));
    }
  lines.push(line(sample(f, f.chance(0.1) ? "error" : ANSWERS[op].final, id)));
  return lines;
}

const ALL_TYPES: AgentEventType[] = [
  "stdout",
  "stderr",
  "exit",
  "ok",
  "data",
  "file",
  "entries",
  "list",
  "artifact",
  "collected",
  "result",
  "mime",
  "cell",
];

/** One hostile piece (one or more lines) that breaks the protocol wherever it is put. */
export function hostile(f: Fuzz, calls: Call[], maxLine: number): Buffer[] {
  const call = f.pick(calls);
  const { id, op } = call;
  const final = JSON.stringify(sample(f, ANSWERS[op].final, id));
  const splice = (text: string, at: number, insert: string): string =>
    text.slice(0, at) + insert + text.slice(at);
  switch (f.int(12)) {
    case 0: // random bytes, after one that is never JSON
      return [
        Buffer.concat([
          Buffer.from([1]),
          Buffer.from(Array.from({ length: f.int(300) }, () => f.int(256))),
          Buffer.from("\n"),
        ]),
      ];
    case 1: // truncated JSON: no strict prefix of an object is JSON
      return [Buffer.from(`${final.slice(0, f.int(final.length - 1))}\n`)];
    case 2: {
      // a field of the wrong type (an object fits no field of any event)
      const event = sample(f, ANSWERS[op].final, id);
      event[f.pick(Object.keys(event))] = { $: 1 };
      return [line(event)];
    }
    case 3: {
      // ids that are not ids
      const bad = f.pick([
        "0",
        "-1",
        "1.5",
        "1e999",
        "9007199254740993",
        '"1"',
        "null",
        "[1]",
        "true",
      ]);
      return [Buffer.from(`${final.replace(`"id":${id}`, `"id":${bad}`)}\n`)];
    }
    case 4: // an id nobody asked for
      return [line(sample(f, "ok", f.pick([1000 + f.int(1e6), Number.MAX_SAFE_INTEGER])))];
    case 5: {
      // prototype pollution keys
      const key = f.pick([
        '"__proto__":{"polluted":1},',
        '"constructor":{"prototype":{"polluted":1}},',
        '"prototype":{},',
        '"toString":1,',
      ]);
      return [Buffer.from(`${splice(final, 1, key)}\n`)];
    }
    case 6: {
      // deep nesting, closed or not
      const depth = 1 + f.int(Math.min(maxLine, 200_000) / 2 - 40);
      const open = f.pick(["[", '{"a":']);
      const close = open === "[" ? "]" : "}";
      return [
        Buffer.from(
          `{"id":${id},"type":"ok","x":${open.repeat(depth)}${f.chance(0.5) ? close.repeat(depth) : ""}}\n`,
        ),
      ];
    }
    case 7: // past the line limit
      return [paddedStdout(id, maxLine + 1 + f.int(100))];
    case 8: {
      // bytes that are not UTF-8, outside any string
      const at = final.indexOf(",") + 1;
      return [
        Buffer.concat([
          Buffer.from(final.slice(0, at)),
          Buffer.from(f.pick(NOT_UTF8)),
          Buffer.from(`${final.slice(at)}\n`),
        ]),
      ];
    }
    case 9: {
      // an event its request cannot have, or a second ready
      const allowed = new Set<string>([...ANSWERS[op].stream, ANSWERS[op].final, "error"]);
      const wrong = ALL_TYPES.filter((t) => !allowed.has(t));
      return [line(f.chance(0.1) ? { type: "ready" } : sample(f, f.pick(wrong), id))];
    }
    case 10: // well-formed JSON that is not a message
      return [
        Buffer.from(
          `${f.pick(["null", "[]", "1", '"s"', "{}", '{"type":"ready","id":1}', `x${f.string(100)}`])}\n`,
        ),
      ];
    default: // past a limit the host counts itself
      return pastLimit(f, call);
  }
}

function pastLimit(f: Fuzz, { id, op }: Call): Buffer[] {
  // More than the 2000 bytes the test's FileBytes allows, in one piece.
  if (op === "read")
    return [
      line({ id, type: "data", data: Buffer.alloc(2001 + f.int(900), 7).toString("base64") }),
    ];
  // 33 rich results in one cell.
  if (op === "run")
    return Array.from({ length: 33 }, () => line({ id, type: "result", isMainResult: false }));
  // A fourth artifact to read (maxCount 3).
  if (op === "collect")
    return Array.from({ length: 4 }, (_, i) =>
      line({ id, type: "artifact", name: `x${i}`, size: 1, read: true }),
    );
  // An answer after the final one.
  return [line(sample(f, ANSWERS[op].final, id)), line(sample(f, ANSWERS[op].final, id))];
}
