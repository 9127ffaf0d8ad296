/**
 * store.judge0 on both stores: a submission is kept beside its execution
 * record and goes when that record expires (a trigger on `executions`).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blankResult } from "../../src/contract/result.js";
import type { Judge0Fields } from "../../src/store/judge0.js";
import type { Store } from "../../src/store/store.js";
import { BACKENDS, newRecord } from "../store/backends.js";

const fields: Judge0Fields = {
  source_code: "print(1)\0",
  stdin: null,
  expected_output: "1",
  number_of_runs: 1,
  cpu_time_limit: 5,
  cpu_extra_time: 1,
  wall_time_limit: 10,
  memory_limit: 128000,
  stack_limit: 64000,
  max_processes_and_or_threads: 60,
  enable_per_process_and_thread_time_limit: false,
  enable_per_process_and_thread_memory_limit: false,
  max_file_size: 1024,
  compiler_options: null,
  command_line_arguments: null,
  redirect_stderr_to_stdout: false,
  callback_url: null,
  additional_files: null,
  enable_network: false,
};

describe.each(BACKENDS)("store.judge0: $name", (backend) => {
  let store: Store;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    ({ store, dispose } = await backend.open());
  });
  afterAll(() => dispose());

  it("keeps a submission by token and expires it with its record", async () => {
    const old = newRecord({ createdAt: Date.now() - 10 * 86_400_000 });
    const fresh = newRecord();
    for (const r of [old, fresh]) {
      await store.records.queued(r);
      await store.records.finished(r.id, blankResult(r.id, "completed"), r.createdAt + 1);
      await store.judge0.save({
        token: r.id,
        userId: "u1",
        languageId: 71,
        createdAt: r.createdAt,
        fields,
      });
    }
    expect(await store.judge0.get(fresh.id)).toEqual({
      token: fresh.id,
      userId: "u1",
      languageId: 71,
      createdAt: fresh.createdAt,
      fields,
    });
    expect(
      (await store.judge0.getMany([old.id, fresh.id, "nope"])).map((s) => s.token).sort(),
    ).toEqual([old.id, fresh.id].sort());
    await store.records.expire(86_400_000);
    expect(await store.judge0.get(old.id)).toBeNull();
    expect(await store.judge0.get(fresh.id)).not.toBeNull();
  });
});
