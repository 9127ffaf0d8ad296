/** A stand-in for the local engine: runs "take" `ms` and print their code, without a sandbox. */
import { Execution, type ExecutionRequest } from "../../src/executions/execution.js";
import { blankResult } from "../../src/contract/result.js";
import type { LocalEngine } from "../../src/cluster/worker.js";

export class FakeEngine implements LocalEngine {
  readonly runs = new Map<string, Execution>();
  readonly started: string[] = [];
  memoryReservedMb = 0;
  memoryBudgetMb = 4096;
  sessions = 0;

  constructor(
    readonly maxConcurrent = 4,
    private readonly ms = 50,
  ) {}

  get activeCount(): number {
    return this.runs.size;
  }

  freeMemoryMb(): number {
    return this.memoryBudgetMb - this.memoryReservedMb;
  }

  sessionCount(): number {
    return this.sessions;
  }

  run(request: ExecutionRequest, id: string): Execution {
    const e = new Execution(id, request);
    this.runs.set(id, e);
    this.started.push(id);
    e.setStatus("running");
    const code = String(request.files[0]?.content ?? "");
    const wait = /sleep/.test(code) ? 60_000 : this.ms;
    const timer = setTimeout(() => {
      e.pushOutput({ stream: "stdout", data: `ran ${code}\n` });
      e.finish({ ...blankResult(id, "completed", null), exitCode: 0, stdout: `ran ${code}\n` });
    }, wait);
    void e.done.then(() => {
      clearTimeout(timer);
      this.runs.delete(id);
    });
    return e;
  }

  kill(id: string, reason: string): boolean {
    const e = this.runs.get(id);
    if (!e) return false;
    e.killReason = reason;
    e.finishWithout("killed", null);
    return true;
  }
}
