/**
 * Assembling the agent's multi-part answers (file bytes, listings, artifacts,
 * rich results) while counting what arrives. Each limit is checked on the
 * host's own count as the pieces come; a well-behaved agent never passes
 * one, so passing one is a ProtocolViolation and ends the session. A size the
 * agent reports is used for nothing but a refusal message.
 */
import type { ArtifactCandidate, ArtifactLimits } from "../artifacts/collect.js";
import {
  MAX_ARTIFACT_CANDIDATES,
  MAX_CELL_RESULT_BYTES,
  MAX_LIST_ENTRIES,
  MAX_MIMES_PER_RESULT,
  MAX_RESULT_BYTES,
  MAX_RESULTS_PER_CELL,
  metadataChars,
  ProtocolViolation,
  type AgentEvent,
  type EventOf,
} from "./agent-protocol.js";
import type { FileEntry, RichResult } from "./types.js";

/** Decoded bytes of a `data` piece. */
function bytesOf(event: EventOf<"data">): Buffer {
  return Buffer.from(event.data, "base64");
}

/** A file's bytes, at most `maxBytes` of them (maxFileBytes). */
export class FileBytes {
  private readonly pieces: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxBytes: number) {}

  onEvent = (event: AgentEvent): void => {
    if (event.type !== "data") return;
    const piece = bytesOf(event);
    this.size += piece.length;
    if (this.size > this.maxBytes)
      throw new ProtocolViolation(`file bytes: more than ${this.maxBytes} (maxFileBytes)`);
    this.pieces.push(piece);
  };

  content(): Buffer {
    return Buffer.concat(this.pieces);
  }
}

/** A directory listing, at most MAX_LIST_ENTRIES entries. */
export class Listing {
  readonly entries: FileEntry[] = [];

  onEvent = (event: AgentEvent): void => {
    if (event.type !== "entries") return;
    if (this.entries.length + event.entries.length > MAX_LIST_ENTRIES)
      throw new ProtocolViolation(`a listing of more than ${MAX_LIST_ENTRIES} entries`);
    this.entries.push(...event.entries);
  };
}

/**
 * Artifact candidates from `collect`: at most MAX_ARTIFACT_CANDIDATES, bytes
 * read for at most maxCount of them, each at most maxBytes, all together at
 * most maxTotalBytes — all counted here.
 */
export class ArtifactPieces {
  private readonly found: (ArtifactCandidate & { pieces?: Buffer[]; received: number })[] = [];
  private read = 0;
  private total = 0;

  constructor(private readonly limits: ArtifactLimits) {}

  onEvent = (event: AgentEvent): void => {
    const { maxBytes, maxCount, maxTotalBytes } = this.limits;
    if (event.type === "artifact") {
      if (this.found.length >= MAX_ARTIFACT_CANDIDATES)
        throw new ProtocolViolation(`more than ${MAX_ARTIFACT_CANDIDATES} artifact candidates`);
      const reading = event.read && !event.problem;
      if (reading && ++this.read > maxCount)
        throw new ProtocolViolation(`more than ${maxCount} artifacts (maxArtifactsPerExecution)`);
      this.found.push({
        name: event.name,
        size: event.size,
        problem: event.problem,
        received: 0,
        ...(reading ? { pieces: [] } : {}),
      });
      return;
    }
    if (event.type !== "data") return;
    const current = this.found.at(-1);
    if (!current?.pieces) throw new ProtocolViolation("artifact bytes without an artifact");
    const piece = bytesOf(event);
    current.received += piece.length;
    this.total += piece.length;
    if (current.received > maxBytes)
      throw new ProtocolViolation(
        `artifact ${current.name}: more than ${maxBytes} bytes (maxArtifactSizeMB)`,
      );
    if (this.total > maxTotalBytes)
      throw new ProtocolViolation(
        `artifacts: more than ${maxTotalBytes} bytes (maxArtifactsTotalMB)`,
      );
    current.pieces.push(piece);
  };

  /** The candidates; a read one's size is the bytes received. */
  candidates(): ArtifactCandidate[] {
    return this.found.map(({ pieces, received, ...c }) =>
      pieces ? { ...c, size: received, content: Buffer.concat(pieces) } : c,
    );
  }
}

/** A cell's rich results: MAX_RESULTS_PER_CELL bundles, MAX_RESULT_BYTES each, MAX_CELL_RESULT_BYTES in all. */
export class RichResults {
  private readonly results: {
    isMainResult: boolean;
    metadata: Record<string, unknown> | undefined;
    data: Map<string, string[]>;
    bytes: number;
  }[] = [];
  private total = 0;

  onEvent = (event: AgentEvent): void => {
    if (event.type === "result") {
      if (this.results.length >= MAX_RESULTS_PER_CELL)
        throw new ProtocolViolation(`rich results: more than ${MAX_RESULTS_PER_CELL} in a cell`);
      // Metadata is bounded by the schema (MAX_METADATA_CHARS) and counted in the cell's bytes.
      const bytes = event.metadata ? metadataChars(event.metadata) : 0;
      this.total += bytes;
      if (this.total > MAX_CELL_RESULT_BYTES)
        throw new ProtocolViolation(
          `rich results: more than ${MAX_CELL_RESULT_BYTES} bytes in a cell`,
        );
      this.results.push({
        isMainResult: event.isMainResult,
        metadata: event.metadata,
        data: new Map(),
        bytes,
      });
      return;
    }
    if (event.type !== "mime") return;
    const current = this.results.at(-1);
    if (!current) throw new ProtocolViolation("rich results: a value without a result");
    const size = Buffer.byteLength(event.data);
    current.bytes += size;
    this.total += size;
    if (current.bytes > MAX_RESULT_BYTES)
      throw new ProtocolViolation(`rich results: one of more than ${MAX_RESULT_BYTES} bytes`);
    if (this.total > MAX_CELL_RESULT_BYTES)
      throw new ProtocolViolation(
        `rich results: more than ${MAX_CELL_RESULT_BYTES} bytes in a cell`,
      );
    const parts = current.data.get(event.mime);
    if (parts) parts.push(event.data);
    else if (current.data.size >= MAX_MIMES_PER_RESULT)
      throw new ProtocolViolation(`rich results: more than ${MAX_MIMES_PER_RESULT} types in one`);
    else current.data.set(event.mime, [event.data]);
  };

  list(): RichResult[] {
    return this.results.map((r) => ({
      data: Object.fromEntries([...r.data].map(([mime, parts]) => [mime, parts.join("")])),
      isMainResult: r.isMainResult,
      ...(r.metadata ? { metadata: r.metadata } : {}),
    }));
  }
}
