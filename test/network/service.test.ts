/** The `network` request field through `warden serve`: bounded by the server's policy, audited, counted. */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKey, startServer, type TestServer } from "../helpers/server.js";

let upstream: Server;
let port: number;
let server: TestServer;

beforeAll(async () => {
  upstream = createServer((req, res) => res.end(`upstream ${req.url}`));
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  port = (upstream.address() as AddressInfo).port;
  server = await startServer({
    config: {
      network: {
        allow: ["*.pkg.test"],
        ports: [port],
        staticHosts: { "files.pkg.test": "127.0.0.1", "evil.test": "127.0.0.1" },
        allowPrivateAddresses: true, // the upstream is a loopback test server
      },
    },
  });
});
afterAll(async () => {
  upstream?.close();
  await server?.stop();
});

describe("network policy through the API", () => {
  it("runs with egress inside the server's allowlist, audits every connection, counts it in /metrics", async () => {
    const code = [
      "import urllib.request",
      `print(urllib.request.urlopen('http://files.pkg.test:${port}/wheel').read().decode())`,
      "try:",
      `    urllib.request.urlopen('http://evil.test:${port}/')`,
      "except Exception as e:",
      "    print('refused', getattr(e, 'code', e))",
    ].join("\n");
    const res = await server.request("POST", "/v1/executions", {
      body: { language: "python", code, network: { allow: ["files.pkg.test"] } },
    });
    const result = (await res.json()) as { id: string; status: string; stdout: string };
    expect(result.status).toBe("completed");
    expect(result.stdout).toBe("upstream /wheel\nrefused 403\n");
    const logs = (await (await server.request("GET", `/api/sandbox/logs/${result.id}`)).json()) as {
      event: string;
      data?: Record<string, unknown>;
    }[];
    const network = logs.filter((l) => l.event.startsWith("network_"));
    expect(network.map((l) => [l.event, l.data?.host])).toEqual(
      expect.arrayContaining([
        ["network_allowed", "files.pkg.test"],
        ["network_denied", "evil.test"],
      ]),
    );
    const metrics = await (await server.request("GET", "/metrics", { token: null })).text();
    expect(metrics).toMatch(/warden_egress_connections_total\{decision="allowed"\} [1-9]/);
    expect(metrics).toMatch(/warden_egress_connections_total\{decision="denied"\} [1-9]/);
  });

  it("asking beyond the server's policy is PERMISSION_DENIED, and nothing is stored", async () => {
    const before = server.count("executions");
    for (const network of [{ allow: ["github.com"] }, { allow: ["files.pkg.test"], ports: [22] }]) {
      const res = await server.request("POST", "/v1/executions", {
        body: { language: "python", code: "print(1)", network },
      });
      expect(res.status).toBe(403);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        "PERMISSION_DENIED",
      );
    }
    const star = await server.request("POST", "/v1/executions", {
      body: { language: "python", code: "print(1)", network: { allow: ["*"] } },
    });
    expect(star.status).toBe(400);
    expect(server.count("executions")).toBe(before);
  });
});

describe("per-key egress", () => {
  it("a key's own allowlist narrows the server's, and is checked against it when made", async () => {
    const narrow = await createKey(server, "narrow", "execute", "narrow", ["other.pkg.test"]);
    const res = await server.request("POST", "/v1/executions", {
      token: narrow,
      body: { language: "python", code: "print(1)", network: { allow: ["files.pkg.test"] } },
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
      /other\.pkg\.test/,
    );
    await expect(createKey(server, "too-wide", "execute", "w", ["github.com"])).rejects.toThrow(
      /outside this server's egress allowlist/,
    );
  });

  it("holds for sessions: egress only through the proxy, only where allowed; none without it", async () => {
    const probe = [
      "import socket, urllib.request",
      "def get(url):",
      "    try:",
      "        return urllib.request.urlopen(url, timeout=5).read().decode()",
      "    except Exception as e:",
      "        return 'refused %s' % getattr(e, 'code', type(e).__name__)",
      `print(get('http://files.pkg.test:${port}/s'))`,
      `print(get('http://evil.test:${port}/'))`,
      "s = socket.socket()",
      "s.settimeout(3)",
      "try:",
      `    s.connect(('127.0.0.1', ${port}))  # the host's loopback, past the proxy`,
      "    print('direct connected')",
      "except OSError as e:",
      "    print('direct refused')",
    ].join("\n");
    const run = async (body: Record<string, unknown>): Promise<string> => {
      const created = await server.request("POST", "/v1/sessions", { body });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: string };
      const cmd = (await (
        await server.request("POST", `/v1/sessions/${id}/commands`, {
          body: { command: ["python3", "-c", probe], timeout: 60 },
        })
      ).json()) as { stdout: string };
      await server.request("DELETE", `/v1/sessions/${id}`);
      return cmd.stdout;
    };
    expect(await run({ network: { allow: ["files.pkg.test"] } })).toBe(
      "upstream /s\nrefused 403\ndirect refused\n",
    );
    const none = (await run({})).split("\n");
    expect(none[0]).toMatch(/^refused /);
    expect(none[1]).toMatch(/^refused /);
    expect(none[2]).toBe("direct refused");
    const beyond = await server.request("POST", "/v1/sessions", {
      body: { network: { allow: ["github.com"] } },
    });
    expect(beyond.status).toBe(403);
    expect(
      server.count("events", "event = 'network_allowed' AND data LIKE '%\"sessionId\"%'"),
    ).toBeGreaterThanOrEqual(1);
  }, 90_000);
});
