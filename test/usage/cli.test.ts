/** `warden usage`, `warden quota`, `warden keys rotate|update` on a data dir, as an operator runs them. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { warden } from "../helpers/cli.js";

const dataDir = mkdtempSync(join(tmpdir(), "warden-usage-cli-"));
const env = { WARDEN_DATA_DIR: dataDir };
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe("usage CLI", () => {
  it("updates and rotates keys", async () => {
    const made = await warden(["keys", "create", "--name", "ops", "--json"], { env });
    expect(made.code).toBe(0);
    const { id, token } = JSON.parse(made.stdout) as { id: string; token: string };
    const updated = await warden(
      ["keys", "update", id, "--name", "ops2", "--scopes", "execute,sessions", "--policy", "audit"],
      { env },
    );
    expect(updated.code, updated.stderr).toBe(0);
    expect(JSON.parse(updated.stdout)).toMatchObject({
      name: "ops2",
      scopes: ["execute", "sessions"],
      policy: "audit",
    });
    const bad = await warden(["keys", "update", id, "--scopes", "root"], { env });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/scopes/);
    const rotated = await warden(["keys", "rotate", id], { env });
    expect(rotated.code).toBe(0);
    expect(rotated.stdout.trim()).toMatch(/^wdn_/);
    expect(rotated.stdout.trim()).not.toBe(token);
    expect((await warden(["keys", "rotate", "key_nope"], { env })).code).not.toBe(0);
  });

  it("sets, lists and removes quotas, and reports usage as JSON and CSV", async () => {
    const db = new Database(join(dataDir, "warden.db"));
    db.prepare(
      "INSERT INTO usage_hourly (hour, user_id, key_id, executions, cpu_ms) VALUES (?, 'ann', '', 2, 1500)",
    ).run(Date.UTC(2030, 0, 2, 5));
    db.close();
    const set = await warden(
      [
        "quota",
        "set",
        "--user",
        "ann",
        "--metric",
        "cpuSeconds",
        "--period",
        "month",
        "--limit",
        "10",
      ],
      { env },
    );
    expect(set.code, set.stderr).toBe(0);
    const quota = JSON.parse(set.stdout) as { id: string; limit: number };
    expect(quota.limit).toBe(10);
    const list = await warden(["quota", "list", "--user", "ann"], { env });
    expect(JSON.parse(list.stdout)).toMatchObject({ quotas: [{ id: quota.id }] });
    const report = await warden(
      [
        "usage",
        "--from",
        "2030-01-01",
        "--to",
        "2030-02-01",
        "--granularity",
        "month",
        "--user",
        "ann",
      ],
      { env },
    );
    expect(JSON.parse(report.stdout)).toMatchObject({
      rows: [{ period: "2030-01-01T00:00:00.000Z", executions: 2, cpuSeconds: 1.5 }],
    });
    const csv = await warden(
      [
        "usage",
        "--from",
        "2030-01-01",
        "--to",
        "2030-02-01",
        "--group-by",
        "user",
        "--format",
        "csv",
      ],
      { env },
    );
    expect(csv.stdout.split("\r\n")[1]).toMatch(/^2030-01-02T00:00:00.000Z,ann,,2,0,1.5,/);
    expect((await warden(["quota", "rm", quota.id], { env })).code).toBe(0);
    expect((await warden(["quota", "rm", quota.id], { env })).code).not.toBe(0);
  });
});
