/**
 * What Warden accepts from a session's agent (native/agent.cjs). The agent
 * runs with the session's uid, so user code can take it over and make it say
 * anything: every message is hostile input. Each line is bounded in length
 * while it arrives, parsed strictly against one schema per event type, and
 * checked against the request it answers. Large payloads (file bytes,
 * artifacts, rich results) come as pieces that each fit a line; the host
 * counts what it receives and never trusts a size the agent reports.
 */
import { z } from "zod";
import { WatchEventSchema } from "../contract/session.js";

/** Longest line (JSON characters) the host keeps; the agent keeps well under it. */
export const MAX_LINE_CHARS = 1024 * 1024;
/** Entries in one directory listing, and the longest name (a Linux name is ≤ 255 bytes). */
export const MAX_LIST_ENTRIES = 10_000;
export const MAX_NAME_CHARS = 255;
/** Candidates one `collect` may report (the agent scans at most 1000 files). */
export const MAX_ARTIFACT_CANDIDATES = 1000;
/** Rich results (MIME bundles) of one cell: count, bytes per result, bytes per cell. */
export const MAX_RESULTS_PER_CELL = 32;
export const MAX_MIMES_PER_RESULT = 16;
export const MAX_RESULT_BYTES = 4 * 1024 * 1024;
export const MAX_CELL_RESULT_BYTES = 16 * 1024 * 1024;
/** A rich result's metadata (JSON characters), e.g. an image's width and height. */
export const MAX_METADATA_CHARS = 16 * 1024;
/**
 * A MIME type as Jupyter writes them (`image/png`, `application/vnd.x+json`):
 * lower case, no parameters. Anything else is a kernel inventing keys.
 */
export const MIME_TYPE = /^[a-z0-9][a-z0-9.+-]{0,63}\/[a-z0-9][a-z0-9.+-]{0,63}$/;
/** A cell's error: name, value and traceback are short text. */
export const MAX_ERROR_CHARS = 64 * 1024;
/** Packages in one `packages` event (the agent sends 200 at a time). */
export const MAX_PACKAGES_PER_BATCH = 200;

const id = z.number().int().positive();
/**
 * A rich result's metadata: two levels of plain values at most, as Jupyter's
 * (`{"image/png": {"width": 100}}`). Never a free JSON value: 1 MiB of nesting
 * parses, but anything walking it recursively (JSON.stringify) would overflow
 * the host's stack.
 */
const metaValue = z.union([z.string().max(1024), z.number(), z.boolean(), z.null()]);
const MetadataSchema = z
  .record(z.string().max(128), z.union([metaValue, z.record(z.string().max(128), metaValue)]))
  .refine((m) => metadataChars(m) <= MAX_METADATA_CHARS, {
    message: `at most ${MAX_METADATA_CHARS} characters`,
  });

/** Characters of a (two-level, checked) metadata object: keys and values, 8 per entry besides. */
export function metadataChars(m: Record<string, unknown>): number {
  let n = 0;
  for (const [key, value] of Object.entries(m)) {
    n += key.length + 8;
    if (value !== null && typeof value === "object")
      for (const [k, v] of Object.entries(value)) n += k.length + 8 + String(v).length;
    else n += String(value).length;
  }
  return n;
}
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, "not base64");
const short = z.string().max(4096);

export const AgentEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("ready") }).strict(),
  z.object({ id, type: z.literal("stdout"), data: z.string() }).strict(),
  z.object({ id, type: z.literal("stderr"), data: z.string() }).strict(),
  z
    .object({
      id,
      type: z.literal("exit"),
      exitCode: z.number().int().nullable(),
      signal: z.string().max(32).nullable(),
      timedOut: z.boolean(),
      truncated: z.boolean(),
      durationMs: z.number().nonnegative(),
    })
    .strict(),
  z.object({ id, type: z.literal("ok") }).strict(),
  z.object({ id, type: z.literal("error"), code: z.string().max(64), message: short }).strict(),
  /** A piece of a file's or an artifact's bytes. */
  z.object({ id, type: z.literal("data"), data: base64 }).strict(),
  /** The end of a file read; its size is the host's count, not this. */
  z.object({ id, type: z.literal("file"), size: z.number().int().nonnegative() }).strict(),
  z
    .object({
      id,
      type: z.literal("entries"),
      entries: z
        .array(
          z
            .object({
              name: z.string().min(1).max(MAX_NAME_CHARS),
              type: z.enum(["file", "directory", "symlink", "other"]),
              size: z.number().int().nonnegative(),
              mtime: z.string().max(64).nullable(),
            })
            .strict(),
        )
        .max(1000),
    })
    .strict(),
  z.object({ id, type: z.literal("list") }).strict(),
  /** An artifact candidate; its bytes follow as `data` pieces. */
  z
    .object({
      id,
      type: z.literal("artifact"),
      name: z.string().max(4096),
      size: z.number().int().nonnegative(),
      /** Its bytes follow (none, for an empty file); false when refused unread. */
      read: z.boolean(),
      problem: short.optional(),
    })
    .strict(),
  z.object({ id, type: z.literal("collected") }).strict(),
  /** A rich result begins; its MIME values follow as `mime` pieces. */
  z
    .object({
      id,
      type: z.literal("result"),
      isMainResult: z.boolean(),
      metadata: MetadataSchema.optional(),
    })
    .strict(),
  z
    .object({
      id,
      type: z.literal("mime"),
      mime: z.string().max(128).regex(MIME_TYPE, "not a MIME type"),
      data: z.string(),
    })
    .strict(),
  z
    .object({
      id,
      type: z.literal("cell"),
      error: z
        .object({
          name: z.string().max(256),
          value: z.string().max(MAX_ERROR_CHARS),
          traceback: z.string().max(MAX_ERROR_CHARS),
        })
        .strict()
        .nullable(),
      timedOut: z.boolean(),
      truncated: z.boolean(),
      durationMs: z.number().nonnegative(),
    })
    .strict(),
  /** Packages installed in the workspace (a snapshot's list), in batches. */
  z
    .object({
      id,
      type: z.literal("packages"),
      packages: z
        .array(
          z
            .object({
              manager: z.enum(["pip", "npm"]),
              name: z.string().min(1).max(214),
              version: z.string().min(1).max(64),
            })
            .strict(),
        )
        .max(MAX_PACKAGES_PER_BATCH),
    })
    .strict(),
  /** A snapshot's end: its archive came as `data` pieces; `skipped` entries had no place in it. */
  z.object({ id, type: z.literal("snapshot"), skipped: z.number().int().nonnegative() }).strict(),
  /** A watch is set (changes follow). */
  z.object({ id, type: z.literal("watching") }).strict(),
  /** A change under a watched directory; `path` is relative to /workspace. */
  z
    .object({
      id,
      type: z.literal("change"),
      kind: WatchEventSchema.shape.kind,
      path: z
        .string()
        .max(4096)
        .refine((p) => !p.startsWith("/") && !p.includes("\0") && !p.split("/").includes(".."), {
          message: "not a path inside /workspace",
        }),
      entry: WatchEventSchema.shape.type,
    })
    .strict(),
  /** One path's lstat (null: missing) and whether it stays in /workspace (see StatInfo). */
  z
    .object({
      id,
      type: z.literal("stat"),
      entry: z
        .object({
          type: z.enum(["file", "directory", "symlink", "other"]),
          size: z.number().int().nonnegative(),
          mode: z.number().int().min(0).max(0o7777),
          uid: z.number().int().nonnegative(),
          gid: z.number().int().nonnegative(),
          mtime: z.string().max(64).nullable(),
          target: short.nullable(),
        })
        .strict()
        .nullable(),
      inside: z.boolean(),
      real: short
        .refine((p) => p === "." || isRelativeInside(p), "not a path inside /workspace")
        .nullable(),
    })
    .strict(),
]);

/** A relative path that does not climb: no leading "/", no "..", no NUL. */
function isRelativeInside(p: string): boolean {
  return p.length > 0 && !p.startsWith("/") && !p.includes("\0") && !p.split("/").includes("..");
}

export type AgentEvent = z.infer<typeof AgentEventSchema>;
export type AgentEventType = AgentEvent["type"];
export type EventOf<T extends AgentEventType> = Extract<AgentEvent, { type: T }>;

/** Requests Warden sends, by op. */
export type AgentOp =
  | "exec"
  | "run"
  | "read"
  | "write"
  | "list"
  | "delete"
  | "mkdir"
  | "collect"
  | "cancel"
  | "stdin"
  | "signal"
  | "relay"
  | "snapshot"
  | "restore"
  | "watch"
  | "context-create"
  | "context-restart"
  | "context-close"
  | "stat"
  | "move";

/**
 * Which events may answer each op: `stream` before the end, `final` to end it
 * (an `error` may end any). An `exit` answering a file read is a lie.
 */
export const ANSWERS: Record<AgentOp, { stream: AgentEventType[]; final: AgentEventType }> = {
  exec: { stream: ["stdout", "stderr"], final: "exit" },
  run: { stream: ["stdout", "stderr", "result", "mime"], final: "cell" },
  read: { stream: ["data"], final: "file" },
  list: { stream: ["entries"], final: "list" },
  collect: { stream: ["artifact", "data"], final: "collected" },
  write: { stream: [], final: "ok" },
  delete: { stream: [], final: "ok" },
  mkdir: { stream: [], final: "ok" },
  cancel: { stream: [], final: "ok" },
  stdin: { stream: [], final: "ok" },
  signal: { stream: [], final: "ok" },
  relay: { stream: [], final: "ok" },
  snapshot: { stream: ["data", "packages"], final: "snapshot" },
  restore: { stream: [], final: "ok" },
  watch: { stream: ["watching", "change"], final: "ok" },
  "context-create": { stream: [], final: "ok" },
  "context-restart": { stream: [], final: "ok" },
  "context-close": { stream: [], final: "ok" },
  stat: { stream: [], final: "stat" },
  move: { stream: [], final: "ok" },
};

/**
 * The agent broke the protocol: the session it speaks for is ended. Thrown by
 * the code that assembles an answer when a count or size passes its limit.
 */
export class ProtocolViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolViolation";
  }
}

/** First schema problem of a message, as `path: message`, for the session's audit trail. */
export function schemaProblem(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue ? `${issue.path.join(".") || "message"}: ${issue.message}` : "invalid";
}
