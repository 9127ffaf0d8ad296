/**
 * The E2B control API's bounded schemas, its mapping of templates and gaps,
 * and the sandbox plane's id and path mapping (src/http/e2b/plane.ts).
 */
import { describe, expect, it } from "vitest";
import { ConfigSchema } from "../../src/config/schema.js";
import type { EnvironmentStore } from "../../src/environments/store.js";
import { WardenError } from "../../src/errors.js";
import {
  CreateSandboxSchema,
  ListQuerySchema,
  MAX_ENV_TOTAL,
  parseMetadataFilter,
} from "../../src/http/e2b/api-schemas.js";
import { refuseGaps, templateEnvironment } from "../../src/http/e2b/api-views.js";
import {
  PlaneError,
  PlaneTokens,
  toE2bId,
  toE2bPath,
  toSessionId,
  toWorkspacePath,
} from "../../src/http/e2b/plane.js";

const firstIssue = (input: unknown): string => {
  const r = CreateSandboxSchema.safeParse(input);
  return r.success ? "ok" : r.error.issues[0]!.message;
};

describe("CreateSandboxSchema", () => {
  it("takes what the SDK sends", () => {
    const r = CreateSandboxSchema.parse({
      templateID: "code-interpreter-v1",
      metadata: { a: "b" },
      envVars: { X: "1" },
      timeout: 120,
    });
    expect(r).toMatchObject({ templateID: "code-interpreter-v1", timeout: 120 });
    expect(CreateSandboxSchema.parse({}).templateID).toBe("base");
  });

  it("bounds metadata and envVars, naming the field and the limit", () => {
    const many = (n: number, v = "x") =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`K${i}`, v]));
    expect(firstIssue({ metadata: many(33) })).toBe("metadata: at most 32 entries");
    expect(firstIssue({ metadata: { k: "v".repeat(1025) } })).toBe("a value of at most 1024 chars");
    expect(firstIssue({ metadata: { ["k".repeat(65)]: "v" } })).toMatch(
      /metadata: keys of 1 to 64/,
    );
    expect(firstIssue({ envVars: many(65) })).toBe("envVars: at most 64 variables");
    expect(firstIssue({ envVars: { X: "v".repeat(8193) } })).toBe("a value of at most 8192 bytes");
    expect(firstIssue({ envVars: many(10, "v".repeat(8000)) })).toBe(
      `envVars: at most ${MAX_ENV_TOTAL} bytes in all`,
    );
    expect(firstIssue({ envVars: { "1BAD": "x" } })).toMatch(/envVars: names must match/);
    expect(firstIssue({ envVars: { WARDEN_PYTHON: "/x" } })).toMatch(/WARDEN_ are Warden's own/);
    expect(firstIssue({ timeout: 0 })).toBe("timeout: at least 1 second");
    expect(firstIssue({ somethingNew: 1 })).not.toBe("ok");
  });
});

describe("list query", () => {
  it("reads state as a list or comma-separated, refusing others", () => {
    expect(ListQuerySchema.parse({}).state).toEqual(["running", "paused"]);
    expect(ListQuerySchema.parse({ state: "paused" }).state).toEqual(["paused"]);
    expect(ListQuerySchema.parse({ state: "running,paused" }).state).toEqual(["running", "paused"]);
    expect(ListQuerySchema.parse({ state: ["running"] }).state).toEqual(["running"]);
    expect(ListQuerySchema.safeParse({ state: "killed" }).success).toBe(false);
    expect(ListQuerySchema.safeParse({ nextToken: "abc" }).success).toBe(false);
  });

  it("decodes the SDK's doubly encoded metadata filter", () => {
    // What the SDK builds for {"a b": "c=d"} once the query string is decoded.
    const pairs = new URLSearchParams({
      [encodeURIComponent("a b")]: encodeURIComponent("c=d"),
    }).toString();
    expect(parseMetadataFilter(pairs)).toEqual({ "a b": "c=d" });
    expect(parseMetadataFilter(undefined)).toEqual({});
    expect(parseMetadataFilter("a=%E0%A4%A")).toBe("metadata: bad percent-encoding");
    const flood = Array.from({ length: 40 }, (_, i) => `k${i}=v`).join("&");
    expect(parseMetadataFilter(flood)).toBe("metadata: at most 32 pairs");
  });
});

describe("templates and gaps", () => {
  const config = ConfigSchema.parse({ e2b: { templates: { base: null, py: "data-sci" } } });
  const environments = { has: (n: string) => n === "ml-env" } as unknown as EnvironmentStore;

  it("maps templates onto environments; an unknown one is a 404 naming the gap", () => {
    expect(templateEnvironment("base", config, environments)).toBeUndefined();
    expect(templateEnvironment("py", config, environments)).toBe("data-sci");
    expect(templateEnvironment("ml-env", config, environments)).toBe("ml-env");
    try {
      templateEnvironment("../../etc", config, environments);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(WardenError);
      expect((e as WardenError).code).toBe("NOT_FOUND");
      expect((e as WardenError).message).toMatch(/templates map to environments/);
    }
  });

  it("names each option Warden cannot honour", () => {
    const gapOf = (body: Record<string, unknown>): string => {
      try {
        refuseGaps(CreateSandboxSchema.parse(body), config);
        return "ok";
      } catch (e) {
        return (e as Error).message.split(":")[0]!;
      }
    };
    expect(gapOf({ allow_internet_access: false })).toBe("ok");
    expect(gapOf({ network: { allowOut: ["pypi.org"] } })).toBe("ok");
    expect(gapOf({ allow_internet_access: true })).toBe("allow_internet_access");
    expect(gapOf({ network: { denyOut: ["0.0.0.0/0"] } })).toBe("network.denyOut");
    expect(gapOf({ network: { allowPublicTraffic: true } })).toBe("network.allowPublicTraffic");
    expect(gapOf({ autoPause: true })).toBe("autoPause");
    expect(gapOf({ autoResume: { enabled: true } })).toBe("autoResume");
    expect(gapOf({ mcp: { x: {} } })).toBe("mcp");
    expect(gapOf({ volumeMounts: [{ name: "v", path: "/data" }] })).toBe("volumeMounts");
    expect(gapOf({ secure: false })).toBe("secure");
  });
});

describe("sandbox ids, tokens and paths", () => {
  const sid = "sess_01J9ZZABCDEFGHJKMNPQRSTVWX";

  it("maps session ids to E2B ids and back, losslessly", () => {
    expect(toE2bId(sid)).toBe("01j9zzabcdefghjkmnpqrstvwx");
    expect(toSessionId(toE2bId(sid))).toBe(sid);
    expect(toSessionId(sid)).toBe(sid);
    for (const bad of [
      "",
      "x",
      "../01j9zzabcdefghjkmnpqrstvwx",
      "01j9zzabcdefghjkmnpqrstvwu!",
      "sess_",
    ])
      expect(toSessionId(bad)).toBeNull();
  });

  it("gives each session its own token", () => {
    const tokens = new PlaneTokens(Buffer.from("s".repeat(32)));
    const other = "sess_01J9ZZABCDEFGHJKMNPQRSTVWY";
    expect(tokens.matches(sid, tokens.tokenFor(sid))).toBe(true);
    expect(tokens.matches(other, tokens.tokenFor(sid))).toBe(false);
    expect(tokens.matches(sid, "")).toBe(false);
    expect(new PlaneTokens(Buffer.from("t".repeat(32))).matches(sid, tokens.tokenFor(sid))).toBe(
      false,
    );
  });

  it("maps E2B paths onto the workspace and refuses the rest", () => {
    expect(toWorkspacePath("/home/user/a/b.txt")).toBe("a/b.txt");
    expect(toWorkspacePath("/workspace/a")).toBe("a");
    expect(toWorkspacePath("a")).toBe("a");
    expect(toWorkspacePath("/home/user")).toBe(".");
    expect(toWorkspacePath("/home/user/")).toBe(".");
    expect(toE2bPath("a")).toBe("/home/user/a");
    expect(toE2bPath(".")).toBe("/home/user");
    for (const bad of ["/etc/passwd", "/home/user/../../etc", "../x", "", "a\0b"])
      expect(() => toWorkspacePath(bad)).toThrow(PlaneError);
  });
});
