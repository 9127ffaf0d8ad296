/**
 * The two stores the contract runs against: SQLite in a temp data dir, and
 * PostgreSQL in a fresh database (WARDEN_TEST_DATABASE_URL) dropped after.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SandboxLimits } from "../../src/contract/limits.js";
import { openStore } from "../../src/store/open.js";
import type { NewRecord, Store } from "../../src/store/store.js";
import { freshDatabase } from "../helpers/postgres.js";

export interface Backend {
  name: "sqlite" | "postgres";
  /** A new store on a new, empty database; `reopen` opens another on the same one. */
  open(): Promise<{
    store: Store;
    reopen: () => Promise<Store>;
    url?: string;
    dispose: () => Promise<void>;
  }>;
}

export const BACKENDS: Backend[] = [
  {
    name: "sqlite",
    async open() {
      const dir = mkdtempSync(join(tmpdir(), "warden-store-"));
      const stores: Store[] = [];
      const reopen = async (): Promise<Store> => {
        const s = await openStore({ dataDir: dir });
        stores.push(s);
        return s;
      };
      return {
        store: await reopen(),
        reopen,
        async dispose() {
          for (const s of stores) await s.close().catch(() => undefined);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: "postgres",
    async open() {
      const db = await freshDatabase();
      const stores: Store[] = [];
      const reopen = async (): Promise<Store> => {
        const s = await openStore({ dataDir: "/nonexistent", databaseUrl: db.url });
        stores.push(s);
        return s;
      };
      return {
        store: await reopen(),
        reopen,
        url: db.url,
        async dispose() {
          for (const s of stores) await s.close().catch(() => undefined);
          await db.drop();
        },
      };
    },
  },
];

export const LIMITS: SandboxLimits = {
  timeoutMs: 10_000,
  killGraceMs: 500,
  memoryMb: 128,
  cpuPercent: 100,
  diskMb: 64,
  pids: 64,
  outputBytes: 1 << 20,
  openFiles: 64,
};

let seq = 0;
/** A record to queue; ids sort in the order they were made. */
export function newRecord(over: Partial<NewRecord> = {}): NewRecord {
  seq++;
  return {
    id: `exe_${String(seq).padStart(6, "0")}_${Math.random().toString(36).slice(2, 8)}`,
    userId: "u1",
    keyId: "key_a",
    source: "rest",
    language: "python",
    files: [{ path: "main.py", content: "print(1)" }],
    limits: LIMITS,
    createdAt: Date.now(),
    ...over,
  };
}
