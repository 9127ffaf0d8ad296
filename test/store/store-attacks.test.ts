/**
 * Hostile values against both stores. PostgreSQL refuses a NUL character in
 * any text value and fails the whole statement: a program or client that
 * gets a NUL into an audit message, a key name or a session label must not
 * make an event, a record or a key unwritable. Output with every byte value
 * must round-trip (bytea), and audit events must stay bounded in memory when
 * the database stops answering.
 */
import { createServer, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Logger } from "../../src/audit/logger.js";
import { auditTrail } from "../../src/audit/trail.js";
import { blankResult } from "../../src/contract/result.js";
import { MAX_PENDING_EVENTS } from "../../src/store/pg/events.js";
import { createPool } from "../../src/store/pg/pool.js";
import { PgRecordStore } from "../../src/store/pg/records.js";
import type { Store } from "../../src/store/store.js";
import { BACKENDS, newRecord } from "./backends.js";

const NUL = "\u0000";

describe.each(BACKENDS)("hostile values: $name", (backend) => {
  let store: Store;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    ({ store, dispose } = await backend.open());
  });
  afterAll(() => dispose());
  /** What a NUL in a text column reads back as: itself in SQLite, U+FFFD in PostgreSQL. */
  const stored = (s: string) => (backend.name === "postgres" ? s.replaceAll(NUL, "\uFFFD") : s);

  it("stores audit events with NUL in every text field, and keeps working", async () => {
    const id = `exe_nul${NUL}id`;
    const event = {
      executionId: id,
      userId: `u${NUL}`,
      level: "warn" as const,
      event: `evil${NUL}`,
      message: `a${NUL}b`.repeat(1000),
      data: { [`k${NUL}`]: `v${NUL}`, nested: [NUL] },
    };
    await store.records.event(event);
    const [got] = await store.records.events(id);
    expect(got).toMatchObject({
      executionId: stored(id),
      userId: stored(event.userId),
      event: stored(event.event),
      message: stored(event.message),
      // JSON escapes NUL: data comes back exactly.
      data: event.data,
    });
    await store.records.event({ level: "info", event: "after", message: "still writing" });
    expect(await store.isWritable()).toBe(true);
  });

  it("stores a record whose fields and output carry NUL, and its compound events", async () => {
    const r = newRecord({ source: `rest${NUL}`, language: `py${NUL}` });
    const ev = { executionId: r.id, level: "info" as const, event: "queued", message: NUL };
    await store.records.queued(r, ev);
    const stdout = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString("latin1");
    const result = { ...blankResult(r.id, "completed"), stdout, stderr: NUL.repeat(10) };
    result.error = { code: "INTERNAL", message: `m${NUL}`, retryable: false };
    await store.records.finished(r.id, result, Date.now(), { ...ev, event: `done${NUL}` });
    const record = (await store.records.get(r.id))!;
    expect(record.source).toBe(stored(r.source));
    expect(record.result!.stdout).toBe(stdout);
    expect(record.result!.stderr).toBe(NUL.repeat(10));
    expect(record.result!.error!.message).toBe(`m${NUL}`);
    expect((await store.records.events(r.id)).map((e) => e.event)).toEqual([
      "queued",
      stored(`done${NUL}`),
    ]);
  });

  it("round-trips 8 MiB of output holding every byte value, never stored larger", async () => {
    const r = newRecord();
    await store.records.queued(r);
    // What the engine hands over: bytes decoded as UTF-8, invalid ones as U+FFFD.
    const raw = Buffer.alloc(8 << 20);
    for (let i = 0; i < raw.length; i++) raw[i] = (i * 7919) & 0xff;
    const stdout = raw.toString("utf8");
    await store.records.finished(r.id, { ...blankResult(r.id, "completed"), stdout }, Date.now());
    expect((await store.records.get(r.id))!.result!.stdout === stdout).toBe(true);
    expect(await store.records.outputBytes(r.id)).toBeLessThanOrEqual(raw.length);
  });

  it("makes keys and sessions whose labels carry NUL", async () => {
    const { key, token } = await store.keys.create({
      name: `n${NUL}`,
      scopes: ["execute"],
      userId: "nul-user",
    });
    expect(key.name).toBe(stored(`n${NUL}`));
    expect(await store.keys.authenticate(token)).toMatchObject({ id: key.id });
    expect(await store.keys.authenticate(`${token}${NUL}`)).toBeNull();
    expect(await store.keys.get(`${key.id}${NUL}`)).toBeNull();
    await store.sessions.register({
      id: "ses_nul",
      userId: "nul-user",
      keyId: key.id,
      workerId: "w",
      language: `py${NUL}`,
      createdAt: Date.now(),
    });
    await store.sessions.ended("ses_nul", `why${NUL}`);
    expect(await store.sessions.get("ses_nul")).toMatchObject({
      language: stored(`py${NUL}`),
      endReason: stored(`why${NUL}`),
    });
  });

  it("never throws a failed audit write into the caller: it is logged", async () => {
    const broken = await backend.open();
    await broken.store.close();
    const logger = {
      isLevelEnabled: () => false,
      error: vi.fn(),
    } as unknown as Logger;
    const audit = auditTrail(broken.store.records, logger);
    expect(() => audit({ level: "info", event: "x", message: "y" })).not.toThrow();
    await vi.waitFor(() => expect(logger.error).toHaveBeenCalled());
    await broken.dispose();
  });
});

describe("PostgreSQL audit events when the database stops answering", () => {
  it("holds at most MAX_PENDING_EVENTS in memory and refuses the rest at once", async () => {
    // A server that accepts connections and never answers: the writer's first batch hangs.
    const sockets: Socket[] = [];
    const silent = createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const { port } = silent.address() as { port: number };
    const pool = createPool({ url: `postgres://u:p@127.0.0.1:${port}/db` });
    const records = new PgRecordStore(pool);
    const outcomes = Array.from({ length: MAX_PENDING_EVENTS + 500 }, (_, i) =>
      records.event({ level: "info", event: "flood", message: String(i) }).then(
        () => "written",
        (error: Error) => error.message,
      ),
    );
    const early = await Promise.race([
      Promise.all(outcomes.slice(MAX_PENDING_EVENTS)),
      new Promise((r) => setTimeout(() => r("still waiting"), 1000)),
    ]);
    expect(early).toEqual(
      Array(500).fill(expect.stringContaining("wait for the database; dropped")),
    );
    // The database goes for good: every held event fails, none is left waiting.
    for (const s of sockets) s.destroy();
    silent.close();
    const all = await Promise.all(outcomes);
    expect(all.filter((o) => o === "written")).toEqual([]);
    await records.flushed();
    await pool.end();
  });
});
