/**
 * Session snapshots: a workspace's archive and its metadata, kept in the data
 * dir. The archive is made inside the session by its agent and streamed out;
 * the host counts its bytes as they arrive, stops at sessions.maxSnapshotMb,
 * reads it strictly as it goes (tar-check.ts) and writes it straight to disk,
 * so a snapshot never sits in Warden's memory and a refused one leaves no file.
 */
import {
  closeSync,
  createReadStream,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
} from "node:fs";
import { renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { SessionsConfig } from "../config/sessions-config.js";
import { SnapshotSchema, type SnapshotInfo } from "../contract/snapshot.js";
import type { ContextLanguage } from "../contract/session.js";
import { WardenError } from "../errors.js";
import { ulid } from "../util/ids.js";
import { ProtocolViolation, type AgentEvent } from "./agent-protocol.js";
import type { AgentSandbox } from "./agent-sandbox.js";
import { TarChecker, TarRefused } from "./tar-check.js";

const MiB = 1024 * 1024;
/** Packages listed in one snapshot, at most (the agent sends no more). */
export const MAX_SNAPSHOT_PACKAGES = 5000;
/** How long restoring a snapshot may last before the host gives up on it. */
export const SNAPSHOT_DEADLINE_MS = 600_000;

/**
 * How long taking one of at most `maxBytes` may last: 30 s plus 8 MiB/s (the
 * agent streams ~65 MB/s here), at most SNAPSHOT_DEADLINE_MS. Kept short
 * because a paused session runs while it is snapshotted: an agent that
 * stalls would otherwise have it run uncounted for ten minutes.
 */
export function takeDeadlineMs(maxBytes: number): number {
  return Math.min(SNAPSHOT_DEADLINE_MS, 30_000 + Math.ceil(maxBytes / (8 * MiB)) * 1000);
}
const FILE = /^snap_[0-9A-Z]{26}\.json$/;

export interface TakeOptions {
  userId: string;
  sessionId: string;
  language: ContextLanguage;
  environment: string;
  reason: SnapshotInfo["reason"];
}

export class SnapshotStore {
  private readonly index = new Map<string, SnapshotInfo>();
  /** Snapshots being taken, by user: counted against the per-user limit. */
  private readonly taking = new Map<string, number>();

  constructor(
    readonly dir: string,
    private readonly config: SessionsConfig,
  ) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(dir)) {
      // A crash mid-snapshot leaves a partial archive or record: it never became a snapshot.
      if (name.endsWith(".partial") || name.endsWith(".json.tmp"))
        rmSync(join(dir, name), { force: true });
      if (!FILE.test(name)) continue;
      try {
        const info = SnapshotSchema.parse(JSON.parse(readFileSync(join(dir, name), "utf8")));
        this.index.set(info.id, info);
      } catch {
        // not one of ours as it stands: left alone, not served
      }
    }
  }

  list(userId: string, admin = false): SnapshotInfo[] {
    return [...this.index.values()].filter((s) => admin || s.userId === userId);
  }

  get(id: string, userId: string, admin = false): SnapshotInfo {
    const info = this.index.get(id);
    if (!info || (!admin && info.userId !== userId))
      throw new WardenError("NOT_FOUND", `snapshot ${id} not found`);
    return info;
  }

  /** The archive of a snapshot the caller may see (for a restore); read by the host only. */
  archive(id: string, userId: string): { info: SnapshotInfo; path: string } {
    const info = this.get(id, userId);
    return { info, path: join(this.dir, `${info.id}.tar`) };
  }

  delete(id: string, userId: string, admin = false): void {
    const info = this.get(id, userId, admin);
    this.index.delete(info.id);
    rmSync(join(this.dir, `${info.id}.json`), { force: true });
    rmSync(join(this.dir, `${info.id}.tar`), { force: true });
  }

  /** Archives the session's workspace through its agent; nothing is kept unless all of it passed. */
  async take(sandbox: AgentSandbox, o: TakeOptions): Promise<SnapshotInfo> {
    const mine = this.list(o.userId).length + (this.taking.get(o.userId) ?? 0);
    if (mine >= this.config.maxSnapshotsPerUser)
      throw new WardenError(
        "QUOTA_EXCEEDED",
        `snapshots: you already keep ${mine} (sessions.maxSnapshotsPerUser ${this.config.maxSnapshotsPerUser}); delete one first`,
      );
    this.taking.set(o.userId, (this.taking.get(o.userId) ?? 0) + 1);
    const id = `snap_${ulid()}`;
    const partial = join(this.dir, `${id}.tar.partial`);
    const fd = openSync(partial, "wx", 0o600);
    let closed = false;
    try {
      const got = await this.receive(sandbox, fd);
      closeSync(fd);
      closed = true;
      renameSync(partial, join(this.dir, `${id}.tar`));
      const info: SnapshotInfo = {
        id,
        userId: o.userId,
        sessionId: o.sessionId,
        createdAt: new Date().toISOString(),
        language: o.language,
        environment: o.environment,
        sizeBytes: got.bytes,
        entries: got.entries,
        skipped: got.skipped,
        packages: got.packages,
        reason: o.reason,
      };
      writeFileSync(join(this.dir, `${id}.json.tmp`), JSON.stringify(info), { mode: 0o600 });
      renameSync(join(this.dir, `${id}.json.tmp`), join(this.dir, `${id}.json`));
      this.index.set(id, info);
      return info;
    } catch (error) {
      if (!closed) closeSync(fd);
      rmSync(partial, { force: true });
      rmSync(join(this.dir, `${id}.tar`), { force: true });
      throw error;
    } finally {
      const left = (this.taking.get(o.userId) ?? 1) - 1;
      if (left > 0) this.taking.set(o.userId, left);
      else this.taking.delete(o.userId);
    }
  }

  /** The agent's archive onto `fd`, counted and checked piece by piece. */
  private async receive(sandbox: AgentSandbox, fd: number) {
    const maxBytes = this.config.maxSnapshotMb * MiB;
    const checker = new TarChecker(this.config.maxSnapshotEntries);
    const packages: SnapshotInfo["packages"] = [];
    const onEvent = (event: AgentEvent): void => {
      if (event.type === "packages") {
        if (packages.length + event.packages.length > MAX_SNAPSHOT_PACKAGES)
          throw new ProtocolViolation(`snapshot: more than ${MAX_SNAPSHOT_PACKAGES} packages`);
        packages.push(...event.packages);
        return;
      }
      if (event.type !== "data") return;
      const piece = Buffer.from(event.data, "base64");
      // The host's own count: the agent was told the limit, and one that sends past it is not Warden's.
      if (checker.bytes + piece.length > maxBytes)
        throw new ProtocolViolation(`snapshot: more than ${maxBytes} bytes`);
      try {
        checker.push(piece);
      } catch (error) {
        if (error instanceof TarRefused) throw new ProtocolViolation(`snapshot: ${error.message}`);
        throw error;
      }
      if (diskError) return;
      try {
        writeSync(fd, piece);
      } catch (error) {
        // The host's own disk (full, say): the snapshot fails, the session goes on.
        diskError = new WardenError(
          "INTERNAL",
          `snapshot: the data dir could not take it (${(error as NodeJS.ErrnoException).code ?? "write failed"})`,
        );
        sandbox.abandon(call.id, diskError);
      }
    };
    let diskError: WardenError | null = null;
    const call = sandbox.send(
      {
        op: "snapshot",
        maxBytes,
        maxEntries: this.config.maxSnapshotEntries,
      },
      onEvent,
      false,
      takeDeadlineMs(maxBytes),
    );
    const end = await call.done;
    try {
      checker.finish();
    } catch (error) {
      // Only a taken-over agent ends an archive early: a lie, like any other.
      const reason = `snapshot: ${(error as Error).message}`;
      sandbox.breach(reason);
      throw new WardenError("INTERNAL", `session ended: its agent broke the protocol: ${reason}`);
    }
    const skipped = end.type === "snapshot" ? end.skipped : 0;
    return { bytes: checker.bytes, entries: checker.entries, skipped, packages };
  }
}

/**
 * Restores an archive into a fresh session, before any user code runs: the
 * host reads it from the data dir and feeds it to the agent in pieces, which
 * extracts as they come (checking every entry again), so neither side holds
 * it whole. The archive passed tar-check when it was made.
 */
export async function restoreInto(
  sandbox: AgentSandbox,
  archivePath: string,
  maxEntries: number,
): Promise<void> {
  const call = sandbox.send({ op: "restore", maxEntries }, undefined, false, SNAPSHOT_DEADLINE_MS);
  let failed = false;
  call.done.catch(() => (failed = true));
  for await (const chunk of createReadStream(archivePath, { highWaterMark: 192 * 1024 })) {
    if (failed) break;
    await sandbox.feed({
      op: "restore-data",
      target: call.id,
      data: (chunk as Buffer).toString("base64"),
    });
  }
  if (!failed) await sandbox.feed({ op: "restore-end", target: call.id });
  await call.done;
}
