/** How Warden answers become MCP content: no sandbox needed. */
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/audit/logger.js";
import { WardenError } from "../../src/errors.js";
import {
  ERROR_META_KEY,
  errorResult,
  fileContent,
  protocolError,
  richContent,
  sandboxUri,
} from "../../src/mcp/results.js";

describe("MCP results", () => {
  it("turns a WardenError into an isError result with its code, and hides anything else", () => {
    const known = errorResult(
      new WardenError("NOT_FOUND", "session s1 not found"),
      silentLogger,
      "t",
    );
    expect(known).toEqual({
      isError: true,
      content: [{ type: "text", text: "NOT_FOUND: session s1 not found" }],
      _meta: {
        [ERROR_META_KEY]: { code: "NOT_FOUND", message: "session s1 not found", retryable: false },
      },
    });
    const unknown = errorResult(new Error("EACCES /run/warden/boxes/b1/secret"), silentLogger, "t");
    expect(JSON.stringify(unknown)).not.toContain("/run/warden");
    expect(unknown.content).toEqual([{ type: "text", text: "INTERNAL: internal error" }]);
    const protocol = protocolError(
      new TypeError("at Object.<anonymous> (/src/x.ts:1)"),
      silentLogger,
    );
    expect(protocol.message).toBe("INTERNAL: internal error");
  });

  it("shows images as image content and keeps their bytes out of structuredContent", () => {
    const { content, structured } = richContent([
      { data: { "image/png": "iVBORw0KGgo=", "text/plain": "<Figure>" }, isMainResult: false },
      { data: { "text/plain": "42", "text/html": "<b>42</b>" }, isMainResult: true },
    ]);
    expect(content).toEqual([
      { type: "image", data: "iVBORw0KGgo=", mimeType: "image/png" },
      { type: "text", text: "<Figure>" },
      { type: "text", text: "42" },
    ]);
    expect(structured[0]).toEqual({
      data: { "text/plain": "<Figure>" },
      mimeTypes: ["image/png", "text/plain"],
      isMainResult: false,
    });
  });

  it("returns files as sandbox-scoped text, blob or image content", () => {
    expect(sandboxUri("sess_1", "a dir/x#.txt")).toBe("sandbox://sess_1/a%20dir/x%23.txt");
    expect(fileContent("sess_1", "a.txt", Buffer.from("héllo")).content).toEqual([
      {
        type: "resource",
        resource: { uri: "sandbox://sess_1/a.txt", mimeType: "text/plain", text: "héllo" },
      },
    ]);
    const binary = fileContent("sess_1", "a.bin", Buffer.from([0xff, 0xfe, 0]));
    expect(binary).toMatchObject({ encoding: "base64", text: "//4A" });
    expect(binary.content[0]).toMatchObject({ type: "resource", resource: { blob: "//4A" } });
    expect(fileContent("sess_1", "plot.PNG", Buffer.from([1, 2])).content).toEqual([
      { type: "image", data: "AQI=", mimeType: "image/png" },
    ]);
  });
});
