/**
 * sendJson answers with exactly JSON.stringify's text: a small value in one
 * piece (with its length), a large one streamed so it is never one string.
 */
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { jsonPieces, sendJson } from "../../src/http/json-pieces.js";

async function answer(value: unknown) {
  const app = Fastify();
  app.get("/", (_request, reply) => sendJson(reply, value));
  try {
    return await app.inject("/");
  } finally {
    await app.close();
  }
}

describe("sendJson", () => {
  const small = {
    id: "exec_1",
    stdout: '1\n\u0001"é',
    nothing: undefined,
    list: [1, undefined, "x"],
    metrics: { cpuTimeMs: 3 },
  };

  it("sends a small value as one text with its length", async () => {
    const res = await answer(small);
    expect(res.body).toBe(JSON.stringify(small));
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(res.headers["content-length"]).toBe(String(Buffer.byteLength(res.body)));
  });

  it("streams a large value, with the same text", async () => {
    const large = { ...small, stdout: "\u0001".repeat(200_000) };
    const res = await answer(large);
    expect(res.body).toBe(JSON.stringify(large));
    expect(res.headers["content-length"]).toBeUndefined();
    expect([...jsonPieces(large)].join("")).toBe(JSON.stringify(large));
  });

  it("counts many small entries towards the limit", async () => {
    const many = { items: Array.from({ length: 100_000 }, () => 1) };
    const res = await answer(many);
    expect(res.body).toBe(JSON.stringify(many));
    expect(res.headers["content-length"]).toBeUndefined();
  });
});
