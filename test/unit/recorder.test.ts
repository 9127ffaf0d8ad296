/**
 * The lifecycle recorder groups a run's writes into two transactions. What
 * must still hold, checked through a second connection to the same file (what
 * a restarted Warden would read after a crash):
 * - the record and its `queued` and `started` events are committed before the
 *   engine is called, so a Warden that dies mid-run leaves a record to fail;
 * - the outcome and its event are committed before the result is handed out.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { auditTrail } from "../../src/audit/trail.js";
import { blankResult, type ExecutionResult } from "../../src/contract/result.js";
import { lifecycleRecorder } from "../../src/executions/recorder.js";
import { Scheduler, type SchedulerOptions } from "../../src/executions/scheduler.js";
import { openDatabase, type Db } from "../../src/store/database.js";
import { SqliteRecordStore } from "../../src/store/sqlite/records.js";
import { smallRequest } from "../helpers/requests.js";

const dirs: string[] = [];
const open: Db[] = [];
afterEach(() => {
  for (const db of open.splice(0)) db.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function request(userId = "u1"): ReturnType<typeof smallRequest> {
  return smallRequest(userId, { memoryMb: 64, code: "print(1)", retryOnFailure: false });
}

/** A store, a recorder on a scheduler, and a second connection that sees only commits. */
function setUp(run: SchedulerOptions["run"], maxConcurrent = 5) {
  const dir = mkdtempSync(join(tmpdir(), "warden-recorder-"));
  dirs.push(dir);
  const db = openDatabase(dir);
  const records = new SqliteRecordStore(db);
  const scheduler = new Scheduler({
    maxConcurrent,
    maxPerUser: maxConcurrent,
    maxQueueSize: 10,
    maxQueuedPerUser: 10,
    queueTimeoutMs: 60_000,
    memoryBudgetMb: 10_000,
    maxRetries: 0,
    retryBackoffMs: 1,
    reservationMb: () => 1,
    run,
  });
  scheduler.onEvent(lifecycleRecorder(records, auditTrail(records, silentLogger), silentLogger));
  const reader = new Database(join(dir, "warden.db"), { readonly: true });
  open.push(reader, db);
  const committed = (id: string) => ({
    status: (
      reader.prepare("SELECT status FROM executions WHERE id = ?").get(id) as
        { status: string } | undefined
    )?.status,
    events: (
      reader.prepare("SELECT event FROM events WHERE execution_id = ? ORDER BY id").all(id) as {
        event: string;
      }[]
    ).map((e) => e.event),
  });
  return { scheduler, committed, commits: () => walCommits(join(dir, "warden.db-wal")) };
}

/**
 * Commits in a WAL file: frames whose header carries the database size after
 * a commit (non-zero only on a transaction's last frame), of the current salt.
 */
function walCommits(file: string): number {
  const wal = readFileSync(file);
  const pageSize = wal.readUInt32BE(8);
  const salt = wal.subarray(16, 24);
  let commits = 0;
  for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize) {
    if (!wal.subarray(at + 8, at + 16).equals(salt)) break;
    if (wal.readUInt32BE(at + 4) !== 0) commits++;
  }
  return commits;
}

const completed = (id: string): ExecutionResult => ({
  ...blankResult(id, "completed", null, { executionTimeMs: 1, cpuTimeMs: 1, peakMemoryBytes: 1 }),
  success: true,
  exitCode: 0,
  stdout: "1\n",
});

describe("lifecycle recorder", () => {
  it("commits the record before the engine runs and the outcome before the result is out", async () => {
    let seenAtRun: ReturnType<ReturnType<typeof setUp>["committed"]> | undefined;
    const { scheduler, committed } = setUp(async (e) => {
      seenAtRun = committed(e.id);
      return completed(e.id);
    });
    const execution = scheduler.submit(request());
    expect(seenAtRun).toEqual({ status: "running", events: ["queued", "started"] });
    await execution.done;
    expect(committed(execution.id)).toEqual({
      status: "completed",
      events: ["queued", "started", "completed"],
    });
  });

  it("commits a run's start in one transaction and its end in another", async () => {
    const { scheduler, commits } = setUp(async (e) => completed(e.id));
    const before = commits();
    await scheduler.submit(request()).done;
    expect(commits() - before).toBe(2);
  });

  it("writes a waiting execution at once, and one killed in the queue in full", async () => {
    const release: (() => void)[] = [];
    const { scheduler, committed } = setUp(
      (e) =>
        new Promise((resolve) => {
          release.push(() => resolve(completed(e.id)));
        }),
      1,
    );
    const first = scheduler.submit(request());
    const waiting = scheduler.submit(request());
    await Promise.resolve();
    expect(committed(waiting.id)).toEqual({ status: "queued", events: ["queued"] });
    const killed = scheduler.submit(request());
    scheduler.kill(killed.id, "test");
    expect(committed(killed.id)).toEqual({ status: "killed", events: ["queued", "killed"] });
    release.shift()!();
    await first.done;
    expect(committed(waiting.id)).toEqual({ status: "running", events: ["queued", "started"] });
    release.shift()!();
    await waiting.done;
    expect(committed(waiting.id).events).toEqual(["queued", "started", "completed"]);
  });
});
