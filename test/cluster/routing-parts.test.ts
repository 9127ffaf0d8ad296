/** The small pieces of routing: the forwarded body's bound, MCP's sandbox ids, placement's order. */
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { describe, expect, it } from "vitest";
import { boundedBody, mcpSandboxes } from "../../src/cluster/forward-parts.js";
import { leastLoaded } from "../../src/cluster/placement.js";
import type { WorkerRow } from "../../src/cluster/worker-directory.js";

describe("a forwarded body", () => {
  it("is cut at the bound however it is sent, and nothing past it is relayed", async () => {
    const chunk = Buffer.alloc(64 * 1024, 1);
    // Endless: a client that declares nothing and never stops.
    const source = new Readable({ read: () => void setImmediate(() => source.push(chunk)) });
    let relayed = 0;
    let cut = false;
    const sink = new Writable({
      write: (c: Buffer, _e, done) => {
        relayed += c.length;
        done();
      },
    });
    await expect(
      pipeline(
        boundedBody(source, 1024 * 1024, () => (cut = true)),
        sink,
      ),
    ).rejects.toThrow(/larger than the limit of 1048576 bytes/);
    expect(cut).toBe(true);
    expect(relayed).toBeLessThanOrEqual(1024 * 1024);
  });

  it("passes a body within the bound untouched", async () => {
    const parts: Buffer[] = [];
    await pipeline(
      boundedBody(Readable.from([Buffer.from("abc"), Buffer.from("def")]), 6, () => undefined),
      new Writable({
        write: (c: Buffer, _e, done) => {
          parts.push(c);
          done();
        },
      }),
    );
    expect(Buffer.concat(parts).toString()).toBe("abcdef");
  });
});

describe("MCP sandbox ids", () => {
  const id = "sess_01ARZ3NDEKTSV4RRFFQ69G5FAV";
  it("finds them in tool calls and sandbox:// resources, batches included", () => {
    expect(
      mcpSandboxes({ method: "tools/call", params: { name: "x", arguments: { sandbox_id: id } } }),
    ).toEqual({ ids: [id], creates: false });
    expect(
      mcpSandboxes([
        { method: "resources/read", params: { uri: `sandbox://${id}/a.txt` } },
        { method: "tools/call", params: { name: "create_sandbox", arguments: {} } },
        null,
        7,
      ]),
    ).toEqual({ ids: [id], creates: true });
    expect(mcpSandboxes({ method: "initialize" })).toEqual({ ids: [], creates: false });
  });
});

describe("placement", () => {
  const w = (id: string, running: number, sessions: number, max = 10): WorkerRow => ({
    id,
    name: id,
    version: "0",
    url: "http://x",
    state: "active",
    startedAt: 0,
    heartbeatAt: 0,
    maxConcurrent: max,
    memoryBudgetMb: 1000,
    running,
    sessions,
    memoryReservedMb: 0,
  });
  it("picks the worker with the most free room relative to its size", () => {
    expect(leastLoaded([w("a", 4, 1), w("b", 2, 1), w("c", 5, 0, 50)])?.id).toBe("c");
    expect(leastLoaded([w("b", 1, 0), w("a", 1, 0)])?.id).toBe("a");
    expect(leastLoaded([])).toBeNull();
  });
});
