/**
 * The isolation tier's API surface without a sandbox: the one resolution
 * (forced key > request > key default > server), the refusals and their
 * codes, the schema fields (old records still parse), the job row and the
 * principal carrying the tier, and the CLI flags.
 */
import { describe, expect, it } from "vitest";
import { ConfigSchema } from "../../src/config/schema.js";
import { ExecutionResultSchema, blankResult } from "../../src/contract/result.js";
import { SessionSchema } from "../../src/contract/session.js";
import {
  checkKeyIsolation,
  checkTierAvailable,
  resolveIsolation,
  tiersOf,
} from "../../src/executions/isolation.js";
import { createExecutionSchemas, toExecutionRequest } from "../../src/executions/request.js";
import { ERROR_CODES } from "../../src/errors.js";
import { KeyPatchSchema, NewKeySchema } from "../../src/store/keys.js";
import { fromJob, QueuedJobSchema, toJob } from "../../src/cluster/job.js";
import { keyOf, principalOf, PrincipalSchema } from "../../src/cluster/internal-auth.js";
import { keyIsolationFlags, parseIsolationFlag } from "../../src/cli/isolation-flags.js";
import { resolveLimits } from "../../src/executions/limits.js";
import type { TierStatus } from "../../src/sandbox/tiers.js";

const FORCED = { isolationDefault: "gvisor", isolationForced: true } as const;
const PREFERS = { isolationDefault: "gvisor", isolationForced: false } as const;
/** What `fn` threw (code and message), or null. */
function thrown(fn: () => unknown): { code?: string; message: string } | null {
  try {
    fn();
    return null;
  } catch (error) {
    return error as { code?: string; message: string };
  }
}
const host = (status: TierStatus) => ({ gvisorStatus: () => status });
const DOWN: TierStatus = { available: false, reason: "no runsc at /usr/bin/runsc" };
const PENDING: TierStatus = { available: false, pending: true, reason: "probe running" };
const UP: TierStatus = { available: true, platform: "ptrace", version: "0.0~20221219.0" };

describe("resolveIsolation", () => {
  it.each([
    // server, request, key → tier
    ["namespaces", undefined, null, "namespaces"],
    ["gvisor", undefined, null, "gvisor"],
    ["namespaces", "gvisor", null, "gvisor"],
    ["gvisor", "namespaces", null, "namespaces"],
    ["namespaces", undefined, PREFERS, "gvisor"],
    ["namespaces", "namespaces", PREFERS, "namespaces"],
    ["namespaces", undefined, FORCED, "gvisor"],
    ["namespaces", "gvisor", FORCED, "gvisor"],
    ["gvisor", undefined, { isolationDefault: "namespaces" }, "namespaces"],
  ] as const)("server %s, request %s, key %j → %s", (server, requested, key, tier) => {
    expect(resolveIsolation(server, requested, key)).toBe(tier);
  });

  it("refuses namespaces on a key forced to gvisor with 403 ISOLATION_FORBIDDEN", () => {
    expect(thrown(() => resolveIsolation("namespaces", "namespaces", FORCED))).toMatchObject({
      code: "ISOLATION_FORBIDDEN",
    });
    expect(ERROR_CODES.ISOLATION_FORBIDDEN).toEqual({ httpStatus: 403, retryable: false });
  });

  it("forces only a gvisor default", () => {
    expect(() => checkKeyIsolation({ isolationForced: true })).toThrow(/isolationForced/);
    expect(() =>
      checkKeyIsolation({ isolationForced: true, isolationDefault: "namespaces" }),
    ).toThrow(/gvisor/);
    expect(() => checkKeyIsolation(FORCED)).not.toThrow();
    // A forced flag with no gvisor default does not force anything in resolution either.
    expect(resolveIsolation("namespaces", "namespaces", { isolationForced: true })).toBe(
      "namespaces",
    );
  });
});

describe("the host's tier", () => {
  it("refuses gvisor with the host's reason (503), never a quiet namespaces run", () => {
    expect(thrown(() => checkTierAvailable(host(DOWN), "gvisor"))).toMatchObject({
      code: "ISOLATION_UNAVAILABLE",
      message: `gVisor tier not available on this host: ${DOWN.available ? "" : DOWN.reason}`,
    });
    expect(() => checkTierAvailable(host(DOWN), "namespaces")).not.toThrow();
    expect(() => checkTierAvailable(host(UP), "gvisor")).not.toThrow();
    // Still probing: not refused at submission (prepare waits for the probe and refuses then).
    expect(() => checkTierAvailable(host(PENDING), "gvisor")).not.toThrow();
  });

  it("lists gvisor only when the host offers it", () => {
    expect(tiersOf(host(DOWN))).toEqual(["namespaces"]);
    expect(tiersOf(host(PENDING))).toEqual(["namespaces"]);
    expect(tiersOf(host(UP))).toEqual(["namespaces", "gvisor"]);
  });
});

describe("schemas", () => {
  const config = ConfigSchema.parse({});
  const { CreateExecutionSchema } = createExecutionSchemas(config);

  it("takes isolation on an execution and refuses another tier naming the field", () => {
    expect(
      CreateExecutionSchema.parse({ language: "python", code: "", isolation: "gvisor" }),
    ).toMatchObject({ isolation: "gvisor" });
    const bad = CreateExecutionSchema.safeParse({ language: "python", code: "", isolation: "vm" });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(["isolation"]);
  });

  it("resolves the request's tier with its key and the server's", () => {
    const def = { language: "python", fileName: "main.py" };
    const input = CreateExecutionSchema.parse({ language: "python", code: "print(1)" });
    const run = (cfg: typeof config, actor: Parameters<typeof toExecutionRequest>[4]) =>
      toExecutionRequest(cfg, def, input, { network: null, environment: null }, actor, "api");
    expect(run(config, { userId: "u" }).isolation).toBe("namespaces");
    const gv = ConfigSchema.parse({ sandbox: { isolation: "gvisor" } });
    expect(run(gv, { userId: "u" }).isolation).toBe("gvisor");
    expect(run(config, { userId: "u", isolation: FORCED }).isolation).toBe("gvisor");
    const asks = CreateExecutionSchema.parse({
      language: "python",
      code: "",
      isolation: "namespaces",
    });
    expect(
      thrown(() =>
        toExecutionRequest(
          config,
          def,
          asks,
          { network: null, environment: null },
          { userId: "u", isolation: FORCED },
          "api",
        ),
      ),
    ).toMatchObject({ code: "ISOLATION_FORBIDDEN" });
  });

  it("parses results and sessions stored before the tier existed, and new ones", () => {
    const old = blankResult("exec_1", "completed");
    expect(ExecutionResultSchema.parse(old).isolation).toBeUndefined();
    const now = { ...old, isolation: "gvisor", metrics: { ...old.metrics, platform: "ptrace" } };
    expect(ExecutionResultSchema.parse(now)).toMatchObject({
      isolation: "gvisor",
      metrics: { platform: "ptrace" },
    });
    expect(SessionSchema.shape.isolation.safeParse(undefined).success).toBe(true);
  });

  it("keys: create and patch take the tier; a patch of only the tier is a patch", () => {
    expect(NewKeySchema.parse({ name: "t", scopes: ["execute"], ...FORCED })).toMatchObject(FORCED);
    expect(KeyPatchSchema.parse({ isolationForced: false })).toEqual({ isolationForced: false });
    expect(KeyPatchSchema.safeParse({ isolationDefault: "vm" }).success).toBe(false);
  });
});

describe("the tier across nodes", () => {
  const limits = resolveLimits(ConfigSchema.parse({}), {});
  it("travels in the job row; a row from before it runs in namespaces", () => {
    const request = {
      language: "python",
      files: [{ path: "main.py", content: "print(1)" }],
      limits,
      network: null,
      retryOnFailure: true,
      userId: "u",
      source: "api" as const,
      isolation: "gvisor" as const,
    };
    const job = QueuedJobSchema.parse(JSON.parse(JSON.stringify(toJob(request))));
    expect(job.isolation).toBe("gvisor");
    const resolved = { limits: request.limits, environment: null, network: null };
    expect(fromJob(job, { userId: "u", keyId: null }, resolved).isolation).toBe("gvisor");
    const { isolation: _dropped, ...old } = job;
    expect(fromJob(old, { userId: "u", keyId: null }, resolved).isolation).toBe("namespaces");
  });

  it("travels in the principal, so a worker keeps a forced key forced", () => {
    const key = {
      id: "key_t",
      name: "t",
      scopes: ["sessions" as const],
      userId: "t",
      createdAt: 0,
      revokedAt: null,
      lastUsedAt: null,
      networkAllow: null,
      policy: null,
      ...FORCED,
    };
    const p = PrincipalSchema.parse(principalOf(key, "127.0.0.1", "r1"));
    expect(keyOf(p)).toMatchObject(FORCED);
  });
});

describe("CLI flags", () => {
  it("parses --isolation and names the flag on a typo", () => {
    expect(parseIsolationFlag(undefined)).toBeUndefined();
    expect(parseIsolationFlag("gvisor")).toBe("gvisor");
    expect(() => parseIsolationFlag("gviser")).toThrow(
      '--isolation: unknown tier "gviser" (one of namespaces, gvisor)',
    );
  });

  it("keys: --isolation, server (update only), --force-isolation and --no-force-isolation", () => {
    expect(keyIsolationFlags({}, false)).toEqual({});
    expect(keyIsolationFlags({ isolation: "gvisor", forceIsolation: true }, false)).toEqual(FORCED);
    expect(keyIsolationFlags({ isolation: "server", forceIsolation: false }, true)).toEqual({
      isolationDefault: null,
      isolationForced: false,
    });
    expect(() => keyIsolationFlags({ isolation: "server" }, false)).toThrow(/--isolation/);
  });
});
