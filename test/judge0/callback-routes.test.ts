/**
 * The Judge0 routes' wiring to callbacks, in process with stand-ins for the
 * execution service and the webhooks service (H2 builds the real one): a
 * refused callback_url runs nothing; an accepted one is registered in
 * Judge0's format for the submission's token; with expected_output the run
 * is judged, so the callback rendered from the record carries the verdict.
 */
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigSchema } from "../../src/config/schema.js";
import { blankResult } from "../../src/contract/result.js";
import type { CreateExecutionInput } from "../../src/executions/request.js";
import type { ExecutionFrontend } from "../../src/executions/frontend.js";
import { judge0Routes } from "../../src/http/judge0/routes.js";
import type { RuntimeRegistry } from "../../src/runtimes/registry.js";
import type { Judge0Submission } from "../../src/store/judge0.js";
import type { CallbackRegistration, Webhooks } from "../../src/webhooks/types.js";
import { WardenError } from "../../src/errors.js";

const submitted: CreateExecutionInput[] = [];
const registered: CallbackRegistration[] = [];
const saved = new Map<string, Judge0Submission>();

const webhooks: Webhooks = {
  async checkUrl(url, field) {
    if (url.includes("169.254.169.254"))
      throw new WardenError("INVALID_REQUEST", `${field}: ${url} is a metadata address`);
    return url;
  },
  async register(r) {
    registered.push(r);
  },
  nudge() {},
  async close() {},
};

const service = {
  submit(input: CreateExecutionInput) {
    submitted.push(input);
    const id = `exe_${submitted.length}`;
    const result = { ...blankResult(id, "completed"), success: true, exitCode: 0, stdout: "1\n" };
    const request = { userId: "alice" };
    return { id, request, result, status: "completed", done: Promise.resolve(result) };
  },
  live: () => undefined,
  killExecution: () => true,
  audit: () => undefined,
} as unknown as ExecutionFrontend;

const registry = {
  list: async () => [
    {
      language: "python",
      aliases: [],
      extensions: [],
      available: true,
      version: "3.11.2",
      missing: [],
      tools: {},
    },
  ],
  lookup: (name: string) =>
    name === "python"
      ? { language: "python", fileName: "main.py", run: ["{python}", "{file}"] }
      : undefined,
} as unknown as RuntimeRegistry;

const app = Fastify();
beforeAll(async () => {
  app.decorateRequest("actor", null);
  app.addHook("onRequest", async (request) => {
    request.actor = {
      userId: "alice",
      anonymous: false,
      key: {
        id: "key_a",
        name: "a",
        scopes: ["execute"],
        userId: "alice",
        createdAt: 0,
        revokedAt: null,
        lastUsedAt: null,
        networkAllow: null,
        policy: null,
        isolationDefault: null,
        isolationForced: false,
      },
    };
  });
  const store = {
    judge0: {
      save: async (s: Judge0Submission) => void saved.set(s.token, s),
      get: async (t: string) => saved.get(t) ?? null,
      getMany: async (ts: readonly string[]) => ts.flatMap((t) => saved.get(t) ?? []),
    },
  };
  await app.register(judge0Routes, {
    service,
    registry,
    config: ConfigSchema.parse({}),
    analyzer: null,
    store,
    webhooks,
    prefix: "/judge0",
  });
});
afterAll(() => app.close());

const post = (body: unknown) =>
  app.inject({ method: "POST", url: "/judge0/submissions", payload: body as object });

describe("Judge0 callback_url", () => {
  it("refuses a URL the webhooks service refuses, running nothing", async () => {
    const r = await post({
      source_code: "print(1)",
      language_id: 71,
      callback_url: "http://169.254.169.254/latest",
    });
    expect(r.statusCode).toBe(422);
    expect(r.json()).toEqual({
      callback_url: ["http://169.254.169.254/latest is a metadata address"],
    });
    expect(submitted).toHaveLength(0);
    expect(registered).toHaveLength(0);
  });

  it("registers an accepted URL in Judge0's format for the token", async () => {
    const r = await post({
      source_code: "print(1)",
      language_id: 71,
      callback_url: "https://hooks.example/j0",
    });
    expect(r.statusCode).toBe(201);
    const { token } = r.json<{ token: string }>();
    expect(registered).toEqual([
      {
        executionId: token,
        userId: "alice",
        keyId: "key_a",
        url: "https://hooks.example/j0",
        format: "judge0",
      },
    ]);
    expect(submitted[0]!.tests).toBeUndefined(); // no expected_output: a plain run
    expect(saved.get(token)!.fields.callback_url).toBe("https://hooks.example/j0");
  });

  it("judges a run with expected_output, so the record carries the verdict the callback sends", async () => {
    await post({
      source_code: "print(1)",
      language_id: 71,
      callback_url: "https://hooks.example/j0",
      expected_output: "1",
      stdin: "x",
    });
    expect(submitted.at(-1)!.tests).toEqual([{ stdin: "x", args: [], expectedOutput: "1" }]);
    expect(submitted.at(-1)!.stdin).toBeUndefined();
  });
});
