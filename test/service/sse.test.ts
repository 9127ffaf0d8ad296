/**
 * The event-stream helper every stream uses (session commands included), in
 * process: numbered ids, resume after `Last-Event-ID`, and a push stream that
 * drops a client which does not read instead of buffering for it.
 */
import { connect } from "node:net";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_UNSENT_BYTES, openEventStream } from "../../src/http/sse.js";

let app: FastifyInstance;
let base: string;
let dropped: Promise<{ sent: number; mostUnsent: number }>;
let markDropped: (r: { sent: number; mostUnsent: number }) => void;

beforeAll(async () => {
  app = Fastify();
  app.get("/five", async (request, reply) => {
    const stream = openEventStream(request, reply);
    for (let i = 1; i <= 5; i++) stream.send("n", { i });
    stream.end();
  });
  dropped = new Promise((resolve) => (markDropped = resolve));
  app.get("/flood", async (request, reply) => {
    const stream = openEventStream(request, reply);
    const piece = "x".repeat(256 * 1024);
    let sent = 0;
    let mostUnsent = 0;
    stream.onClose(() => markDropped({ sent, mostUnsent }));
    // Far more than the bound, pushed as a session's output would be.
    for (let i = 0; i < 4 * (MAX_UNSENT_BYTES / piece.length); i++) {
      stream.send("stdout", { data: piece });
      if (reply.raw.destroyed) break;
      sent++;
      mostUnsent = Math.max(mostUnsent, reply.raw.writableLength);
    }
  });
  base = await app.listen({ port: 0, host: "127.0.0.1" });
});
afterAll(async () => {
  await app?.close();
});

function ids(text: string): string[] {
  return [...text.matchAll(/^id: (.*)$/gm)].map((m) => m[1]!);
}

describe("event stream ids", () => {
  it("numbers push events and leaves out those up to Last-Event-ID", async () => {
    const all = await (await fetch(`${base}/five`)).text();
    expect(ids(all)).toEqual(["1", "2", "3", "4", "5"]);
    const rest = await (await fetch(`${base}/five`, { headers: { "last-event-id": "3" } })).text();
    expect(ids(rest)).toEqual(["4", "5"]);
    expect(rest).toContain('data: {"i":4}');
  });
});

describe("a push stream client that does not read", () => {
  it("is dropped once it is MAX_UNSENT_BYTES behind, not buffered for", async () => {
    const { port } = new URL(base);
    const socket = connect(Number(port), "127.0.0.1");
    socket.write("GET /flood HTTP/1.1\r\nHost: x\r\n\r\n");
    socket.pause(); // never reads: the kernel buffers fill, then Warden's would
    const { sent, mostUnsent } = await dropped;
    // Dropped well before everything was queued for it, never more than one event past the bound.
    expect(sent).toBeLessThan(4 * (MAX_UNSENT_BYTES / (256 * 1024)));
    expect(mostUnsent).toBeLessThan(MAX_UNSENT_BYTES + 300 * 1024);
    socket.destroy();
    expect((await fetch(`${base}/five`)).status).toBe(200);
  });
});
