/**
 * How Warden's answers become MCP tool results: one error mapper, MIME
 * bundles to content blocks, file bytes to sandbox-scoped resources, and
 * output chunks to progress notifications. Nothing here names a host path.
 */
import type { TestsSummary } from "../contract/judging.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import {
  ErrorCode,
  type CallToolResult,
  type ContentBlock,
  type ServerNotification,
  type ServerRequest,
} from "@modelcontextprotocol/sdk/types.js";
import type { Logger } from "../audit/logger.js";
import { toErrorInfo, WardenError } from "../errors.js";
import type { OutputChunk } from "../sandbox/types.js";
import type { Finding } from "../contract/policy.js";
import type { ArtifactEntry, RejectedArtifact } from "../contract/result.js";
import { describeFinding } from "../policy/findings.js";
import type { RichResult } from "../sessions/manager.js";
import type { McpServerOptions } from "./context.js";

export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** Image types a client can show as MCP image content. */
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
const IMAGE_EXTENSIONS: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
};
/** Where an error result carries `{code, message, retryable}`. */
export const ERROR_META_KEY = "dev.warden/error";
/** Longest piece of output carried by one progress notification. */
const PROGRESS_MESSAGE_CHARS = 2000;

/**
 * The one place a failure becomes a tool result: `isError`, text `CODE:
 * message`, and the error info under `_meta` for programs (not in
 * `structuredContent`, which clients check against the tool's output schema).
 * Anything that is not a WardenError is INTERNAL with no detail (logged here,
 * never sent).
 */
export function errorResult(error: unknown, logger: Logger, tool: string): CallToolResult {
  const info = toErrorInfo(error);
  if (!(error instanceof WardenError)) logger.error({ err: error, tool }, "MCP tool failed");
  return {
    isError: true,
    content: [{ type: "text", text: `${info.code}: ${info.message}` }],
    _meta: { [ERROR_META_KEY]: info },
  };
}

/** `text` with its label, or nothing when empty. */
function section(label: string, text: string): string[] {
  return text ? [`${label}:\n${text}`] : [];
}

/** Human-readable text of a run: the status line, then stdout and stderr. */
/** The findings of a policy refusal as text: the first 20, one a line. */
export function findingsText(findings: Finding[]): string {
  return `findings:\n${findings.slice(0, 20).map(describeFinding).join("\n")}`;
}

/** Cases listed at most in a tool's text; the rest are counted (all are in structuredContent). */
const TEXT_CASES = 50;

/** A test-case run, compactly: the totals, then one line per case. */
export function testsText(t: TestsSummary): string {
  const head = `tests: ${t.verdict}, ${t.passed}/${t.total} passed, ${t.skipped} skipped, score ${t.score}/${t.maxScore}`;
  const lines = t.cases.slice(0, TEXT_CASES).map((c) => {
    const why = c.diff ?? c.message;
    const ran = c.status === null ? "" : ` ${c.timeMs} ms`;
    return `${c.name}: ${c.verdict}${ran}${why ? ` (${why})` : ""}`;
  });
  const more = t.cases.length > TEXT_CASES ? [`… and ${t.cases.length - TEXT_CASES} more`] : [];
  return [head, ...lines, ...more].join("\n");
}

export function runText(status: string, detail: string, stdout: string, stderr: string): string {
  return [`status: ${status}${detail}`, ...section("stdout", stdout), ...section("stderr", stderr)]
    .join("\n")
    .trimEnd();
}

/**
 * MIME bundles of a code cell as content blocks: images as image content,
 * the rest as text (text/plain preferred). In `structured`, image data is
 * left out (it is in the content already); `mimeTypes` lists what there was.
 */
export function richContent(results: RichResult[]): {
  content: ContentBlock[];
  structured: { data: Record<string, string>; mimeTypes: string[]; isMainResult: boolean }[];
} {
  const content: ContentBlock[] = [];
  const structured = results.map((r) => {
    const data: Record<string, string> = {};
    for (const [type, value] of Object.entries(r.data)) {
      if (IMAGE_TYPES.has(type)) content.push({ type: "image", data: value, mimeType: type });
      else data[type] = value;
    }
    const text = data["text/plain"] ?? data["text/markdown"] ?? data["text/html"];
    if (text !== undefined) content.push({ type: "text", text });
    return { data, mimeTypes: Object.keys(r.data), isMainResult: r.isMainResult };
  });
  return { content, structured };
}

/** Images up to this size (and this much per result) come back inline; the rest as links. */
const INLINE_IMAGE_BYTES = 4 * 1024 * 1024;
const INLINE_TOTAL_BYTES = 8 * 1024 * 1024;
/** Progress notifications at most this often; output between them is batched. */
const PROGRESS_INTERVAL_MS = 100;

/** The URI of an artifact: its owner (execution or sandbox) and name, never a host path. */
export function artifactUri(ownerId: string, name: string): string {
  return `artifact://${ownerId}/${name.split("/").map(encodeURIComponent).join("/")}`;
}

/**
 * A run's artifacts as content: images as image content (a plot saved to
 * output/), everything else as a link to an `artifact://` resource the client
 * can read, plus a line for each refused one.
 */
export async function artifactContent(
  o: McpServerOptions,
  ownerId: string,
  r: { artifacts: ArtifactEntry[]; rejectedArtifacts: RejectedArtifact[] },
): Promise<ContentBlock[]> {
  const blocks: ContentBlock[] = [];
  let inline = 0;
  for (const a of r.artifacts) {
    const fits = a.size <= INLINE_IMAGE_BYTES && inline + a.size <= INLINE_TOTAL_BYTES;
    if (IMAGE_TYPES.has(a.mimeType) && fits) {
      // An artifact that expired or vanished meanwhile is said so; the run's result stands.
      const stored = await o.service.artifacts
        .open(ownerId, a.name, o.userId, false)
        .catch(() => null);
      if (!stored) {
        blocks.push({ type: "text", text: `artifact ${a.name} is no longer available` });
        continue;
      }
      inline += a.size;
      blocks.push({ type: "image", data: stored.content.toString("base64"), mimeType: a.mimeType });
    } else
      blocks.push({
        type: "resource_link",
        uri: artifactUri(ownerId, a.name),
        name: a.name,
        mimeType: a.mimeType,
        description: `artifact, ${a.size} bytes`,
      });
  }
  for (const x of r.rejectedArtifacts)
    blocks.push({ type: "text", text: `artifact ${x.name} refused: ${x.reason}` });
  return blocks;
}

/** The URI of a file in a sandbox: scoped to the sandbox, never a host path. */
export function sandboxUri(sandboxId: string, path: string): string {
  return `sandbox://${sandboxId}/${path.split("/").map(encodeURIComponent).join("/")}`;
}

function isUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** A file as the contents of a resource: text when it is UTF-8, else a base64 blob. */
export function fileResource(
  uri: string,
  path: string,
  bytes: Buffer,
):
  | { uri: string; mimeType: string; text: string }
  | { uri: string; mimeType: string; blob: string } {
  const image = IMAGE_EXTENSIONS[path.split(".").pop()?.toLowerCase() ?? ""];
  if (!image && isUtf8(bytes)) return { uri, mimeType: "text/plain", text: bytes.toString("utf8") };
  return { uri, mimeType: image ?? "application/octet-stream", blob: bytes.toString("base64") };
}

/** A file's bytes as tool content: an image, or a text or blob resource. */
export function fileContent(
  sandboxId: string,
  path: string,
  bytes: Buffer,
): { content: ContentBlock[]; encoding: "utf8" | "base64"; text: string } {
  const resource = fileResource(sandboxUri(sandboxId, path), path, bytes);
  if ("text" in resource)
    return { content: [{ type: "resource", resource }], encoding: "utf8", text: resource.text };
  const content: ContentBlock = resource.mimeType.startsWith("image/")
    ? { type: "image", data: resource.blob, mimeType: resource.mimeType }
    : { type: "resource", resource };
  return { content: [content], encoding: "base64", text: resource.blob };
}

/**
 * A failure outside a tool call (reading a resource) as a JSON-RPC error:
 * the same `CODE: message`, the info as `data`, never internals. (The SDK
 * sends `code`, `message` and `data` of what a handler throws.)
 */
export function protocolError(error: unknown, logger: Logger): Error {
  const info = toErrorInfo(error);
  if (!(error instanceof WardenError)) logger.error({ err: error }, "MCP request failed");
  const code =
    info.code === "INVALID_REQUEST" || info.code === "NOT_FOUND"
      ? ErrorCode.InvalidParams
      : ErrorCode.InternalError;
  return Object.assign(new Error(`${info.code}: ${info.message}`), { code, data: info });
}

/**
 * Streams output as `notifications/progress` when the client asked for
 * progress (sent a progressToken); otherwise does nothing. Sending is fire
 * and forget: a client that went away must not fail the run.
 */
export function progressReporter(extra: ToolExtra): (chunk: OutputChunk) => void {
  const token = extra._meta?.progressToken;
  if (token === undefined) return () => undefined;
  let progress = 0;
  let pending = "";
  let last = 0;
  // Batched: a program flushing byte by byte must not become a notification per byte.
  // What is left unsent at the end is in the result anyway.
  return (chunk) => {
    if (pending.length < PROGRESS_MESSAGE_CHARS) pending += `${chunk.stream}: ${chunk.data}`;
    const now = Date.now();
    if (now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    progress += 1;
    const message = pending.slice(0, PROGRESS_MESSAGE_CHARS);
    pending = "";
    extra
      .sendNotification({
        method: "notifications/progress",
        params: { progressToken: token, progress, message },
      })
      .catch(() => undefined);
  };
}
