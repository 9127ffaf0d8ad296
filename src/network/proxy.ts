/**
 * The egress proxy of one run: a Unix socket the sandbox reaches through the
 * bridge inside it. Each connection speaks HTTP (CONNECT, or a plain request
 * with an absolute URL) or SOCKS5 (CONNECT by name); the proxy resolves names
 * itself, checks the policy, connects, counts bytes and reports every
 * decision.
 */
import { lookup } from "node:dns/promises";
import { chmod, chown, rm } from "node:fs/promises";
import { connect, createServer, isIP, type Server, type Socket } from "node:net";
import { isBlockedAddress, matches, type EgressPolicy } from "./policy.js";

export interface EgressEvent {
  decision: "allowed" | "denied";
  host: string;
  port: number;
  protocol: "http" | "connect" | "socks5";
  reason: string | null;
  /** Bytes both ways; reported when an allowed connection ends. */
  bytes: number;
  address: string | null;
}

const HEAD_LIMIT = 64 * 1024;

export class EgressProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private connections = 0;
  bytes = 0;

  constructor(
    private readonly policy: EgressPolicy,
    private readonly onEvent: (event: EgressEvent) => void,
  ) {}

  /** Listens on `path`, owned by the sandbox uid so that only it may connect. */
  async listen(path: string, uid: number): Promise<void> {
    await rm(path, { force: true });
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(path, () => resolve());
    });
    await chown(path, uid, uid);
    await chmod(path, 0o600);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  }

  private accept(client: Socket): void {
    this.track(client);
    let head = Buffer.alloc(0);
    const onData = (data: Buffer): void => {
      head = Buffer.concat([head, data]);
      if (head[0] === 0x05) {
        client.off("data", onData);
        void this.socks(client, head);
        return;
      }
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) {
        if (head.length > HEAD_LIMIT) client.destroy();
        return;
      }
      client.off("data", onData);
      void this.http(client, head.subarray(0, end + 4), head.subarray(end + 4));
    };
    client.on("data", onData);
  }

  /** Decides and connects; resolves with the upstream socket or null (after reporting the denial). */
  private async open(
    host: string,
    port: number,
    protocol: EgressEvent["protocol"],
  ): Promise<Socket | null> {
    const deny = (reason: string, address: string | null = null): null => {
      this.onEvent({ decision: "denied", host, port, protocol, reason, bytes: 0, address });
      return null;
    };
    if (isIP(host)) return deny("addresses are not allowed, only names on the allowlist");
    if (!this.policy.allow.some((p) => matches(p, host)))
      return deny("host is not on the allowlist");
    if (!this.policy.ports.includes(port)) return deny(`port ${port} is not allowed`);
    if (++this.connections > this.policy.maxConnections) return deny("connection limit reached");
    let addresses: string[];
    const fixed = this.policy.staticHosts[host.toLowerCase()];
    try {
      addresses = fixed ? [fixed] : (await lookup(host, { all: true })).map((a) => a.address);
    } catch {
      return deny("name does not resolve");
    }
    const address = addresses.find(
      (a) => this.policy.allowPrivateAddresses || !isBlockedAddress(a),
    );
    if (!address) return deny("name resolves to a refused address range", addresses[0] ?? null);
    const upstream = connect({ host: address, port });
    this.track(upstream);
    const ok = await new Promise<boolean>((resolve) => {
      upstream.once("connect", () => resolve(true));
      upstream.once("error", () => resolve(false));
    });
    if (!ok) return deny("upstream refused the connection", address);
    upstream.on("close", () =>
      this.onEvent({
        decision: "allowed",
        host,
        port,
        protocol,
        reason: null,
        bytes: upstream.bytesRead + upstream.bytesWritten,
        address,
      }),
    );
    return upstream;
  }

  /** Pipes both ways, counting bytes against the run's cap. */
  private splice(client: Socket, upstream: Socket, first?: Buffer): void {
    const count = (n: number): void => {
      this.bytes += n;
      if (this.bytes > this.policy.maxBytes) {
        client.destroy();
        upstream.destroy();
      }
    };
    if (first && first.length > 0) {
      count(first.length);
      upstream.write(first);
    }
    client.on("data", (d: Buffer) => {
      count(d.length);
      upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      count(d.length);
      client.write(d);
    });
    client.on("end", () => upstream.end());
    upstream.on("end", () => client.end());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  }

  private async http(client: Socket, head: Buffer, rest: Buffer): Promise<void> {
    const text = head.toString("latin1");
    const [requestLine = "", ...headerLines] = text.split("\r\n");
    const [method = "", target = "", version = "HTTP/1.1"] = requestLine.split(" ");
    const refuse = (status: string, why: string): void => {
      client.end(
        `HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nwarden: ${why}\n`,
      );
    };
    if (method === "CONNECT") {
      const [host = "", portText = "443"] = splitHostPort(target, 443);
      const upstream = await this.open(host, Number(portText), "connect");
      if (!upstream) return refuse("403 Forbidden", `egress to ${target} denied by policy`);
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      this.splice(client, upstream, rest);
      return;
    }
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return refuse(
        "400 Bad Request",
        "send requests with an absolute http:// URL (or use CONNECT)",
      );
    }
    if (url.protocol !== "http:")
      return refuse(
        "400 Bad Request",
        "only http:// goes through as a plain request; use CONNECT for https",
      );
    const port = Number(url.port || 80);
    const upstream = await this.open(url.hostname, port, "http");
    if (!upstream) return refuse("403 Forbidden", `egress to ${url.host} denied by policy`);
    // One request per connection: a kept-alive client could otherwise reuse it for another host.
    const headers = headerLines.filter(
      (l) => l && !/^(proxy-[a-z-]*|connection|keep-alive):/i.test(l),
    );
    const rewritten = `${method} ${url.pathname}${url.search} ${version}\r\n${[...headers, "connection: close"].join("\r\n")}\r\n\r\n`;
    this.splice(client, upstream, Buffer.concat([Buffer.from(rewritten, "latin1"), rest]));
  }

  private async socks(client: Socket, initial: Buffer): Promise<void> {
    let buffer = initial;
    const need = async (n: number): Promise<Buffer> => {
      while (buffer.length < n) {
        const chunk = await new Promise<Buffer | null>((resolve) => {
          client.once("data", resolve);
          client.once("close", () => resolve(null));
        });
        if (!chunk) throw new Error("closed");
        buffer = Buffer.concat([buffer, chunk]);
      }
      const out = buffer.subarray(0, n);
      buffer = buffer.subarray(n);
      return out;
    };
    try {
      const [, nMethods = 0] = await need(2);
      await need(nMethods);
      client.write(Buffer.from([0x05, 0x00])); // no authentication
      const [, cmd, , atyp] = await need(4);
      let host: string;
      if (atyp === 0x03) host = (await need((await need(1))[0]!)).toString("latin1");
      else if (atyp === 0x01) host = [...(await need(4))].join(".");
      else if (atyp === 0x04)
        host = (await need(16)).toString("hex").replace(/(.{4})(?!$)/g, "$1:");
      else throw new Error("bad address type");
      const port = (await need(2)).readUInt16BE(0);
      const reply = (code: number): Buffer =>
        Buffer.from([0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
      if (cmd !== 0x01) {
        this.onEvent({
          decision: "denied",
          host,
          port,
          protocol: "socks5",
          reason: "only CONNECT is supported",
          bytes: 0,
          address: null,
        });
        client.end(reply(0x07));
        return;
      }
      const upstream = await this.open(host, port, "socks5");
      if (!upstream) {
        client.end(reply(0x02)); // connection not allowed by ruleset
        return;
      }
      client.write(reply(0x00));
      this.splice(client, upstream, buffer);
    } catch {
      client.destroy();
    }
  }
}

function splitHostPort(target: string, defaultPort: number): [string, string] {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(target);
  if (v6) return [v6[1]!, v6[2] ?? String(defaultPort)];
  const i = target.lastIndexOf(":");
  return i < 0 ? [target, String(defaultPort)] : [target.slice(0, i), target.slice(i + 1)];
}
