/**
 * Refusals through `warden serve`: a program provokes 5,000 of them (with a
 * connection cap high enough not to stop it first) and the audit table and
 * the log stay small, the counts stay exact, and Warden keeps answering.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../helpers/server.js";

let server: TestServer;

beforeAll(async () => {
  server = await startServer({
    config: {
      network: {
        allow: ["*.pkg.test"],
        ports: [80],
        maxConnections: 100_000, // so that the throttle, not the cap, is what is tested
      },
    },
  });
});
afterAll(async () => {
  await server?.stop();
});

describe("refusal audit through the API", () => {
  it("5,000 refused attempts leave a bounded number of audit rows and log lines, with exact counts", async () => {
    const code = [
      "import socket",
      "refused = 0",
      "for i in range(5000):",
      "    s = socket.create_connection(('127.0.0.1', 3128), timeout=5)",
      "    s.sendall(b'CONNECT evil%d.test:80 HTTP/1.1\\r\\n\\r\\n' % i)",
      "    if s.recv(100).startswith(b'HTTP/1.1 403'): refused += 1",
      "    s.close()",
      "print(refused)",
    ].join("\n");
    const res = await server.request("POST", "/v1/executions", {
      body: { language: "python", code, network: { allow: ["files.pkg.test"] }, timeout: 120 },
    });
    const result = (await res.json()) as { id: string; status: string; stdout: string };
    expect(result.stdout).toBe("5000\n");
    const rows = server.count(
      "events",
      `event = 'network_denied' AND execution_id = '${result.id}'`,
    );
    expect(rows).toBeGreaterThan(0);
    expect(rows).toBeLessThanOrEqual(30);
    const logs = (await (await server.request("GET", `/api/sandbox/logs/${result.id}`)).json()) as {
      event: string;
      data?: { count?: number };
    }[];
    const denied = logs.filter((l) => l.event === "network_denied");
    expect(denied.reduce((n, l) => n + (l.data?.count ?? 0), 0)).toBe(5000);
    expect(server.logs.filter((l) => l.includes("network_denied")).length).toBeLessThanOrEqual(30);
    // Still up and answering.
    const again = await server.request("POST", "/v1/executions", {
      body: { language: "python", code: "print('up')" },
    });
    expect(((await again.json()) as { stdout: string }).stdout).toBe("up\n");
  }, 240_000);
});
