/**
 * The egress proxy of one run: a Unix socket the sandbox reaches through the
 * bridge inside it. Each connection speaks HTTP (CONNECT, or a plain request
 * with an absolute URL) or SOCKS5 (CONNECT by name); the proxy resolves names
 * itself, checks the policy, connects, counts bytes and reports decisions.
 *
 * Everything arriving here comes from the sandbox and is hostile: heads are
 * read against a byte limit and a deadline, parsed strictly (http-head.ts,
 * socks.ts, one host name parser for all three paths), and a refusal is an
 * answer to the program, never an exception in Warden.
 */
import { lookup } from "node:dns/promises";
import { chmod, chown, rm } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import {
  RefusalReporter,
  type EgressEvent,
  type Refusal,
  type RefusalReporterOptions,
} from "./events.js";
import { parseHostname, printable } from "../util/hostname.js";
import { HEAD_LIMITS, parseHead, upstreamHead } from "./http-head.js";
import { isBlockedAddress, isPrivateAllowed, matches, type EgressPolicy } from "./policy.js";
import { parseGreeting, parseRequest, reply } from "./socks.js";

export type { EgressEvent } from "./events.js";

export interface EgressProxyOptions {
  /** Time a connection has to send its request head (or SOCKS messages). @default 10_000 */
  headTimeoutMs: number;
  /** Time an upstream has to accept the connection. @default 10_000 */
  connectTimeoutMs: number;
  refusals: Partial<RefusalReporterOptions>;
}

type Protocol = EgressEvent["protocol"];
type Opened = { socket: Socket } | { reason: string; address: string | null };

export class EgressProxy {
  private server: Server | undefined;
  private listening = false;
  private readonly sockets = new Set<Socket>();
  private readonly reporter: RefusalReporter;
  private readonly o: EgressProxyOptions;
  /** Connections accepted so far, whatever became of them. */
  private attempts = 0;
  bytes = 0;
  /** Upstream connections made (usage accounting, docs/usage.md). */
  connections = 0;

  constructor(
    private readonly policy: EgressPolicy,
    private readonly onEvent: (event: EgressEvent) => void,
    options: Partial<EgressProxyOptions> = {},
  ) {
    this.o = { headTimeoutMs: 10_000, connectTimeoutMs: 10_000, refusals: {}, ...options };
    this.reporter = new RefusalReporter(onEvent, this.o.refusals);
  }

  /** Listens on `path`, owned by the sandbox uid so that only it may connect. */
  async listen(path: string, uid: number): Promise<void> {
    await rm(path, { force: true });
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(path, () => resolve());
    });
    this.listening = true;
    await chown(path, uid, uid);
    await chmod(path, 0o600);
  }

  /** Ends every connection and reports the refusals not yet reported. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await this.stopListening();
    this.reporter.flush();
  }

  private stopListening(): Promise<void> {
    const server = this.server;
    if (!server || !this.listening) return Promise.resolve();
    this.listening = false;
    return new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  }

  private refuse(r: Omit<Refusal, "address"> & { address?: string | null }): void {
    this.reporter.refuse({ address: null, ...r });
  }

  private accept(client: Socket): void {
    this.track(client);
    // Every connection counts against the run's cap, refused or not; at the
    // cap the proxy stops listening, so a program spinning on refusals costs
    // Warden nothing more (its connects fail inside the sandbox).
    if (++this.attempts > this.policy.maxConnections) {
      this.refuse({ host: "", port: 0, protocol: "unknown", reason: "connection limit reached" });
      client.destroy();
      return;
    }
    if (this.attempts === this.policy.maxConnections) {
      this.onEvent({
        decision: "denied",
        host: "*",
        port: 0,
        protocol: "unknown",
        reason: `connection limit reached (${this.policy.maxConnections}): no more connections in this run`,
        bytes: 0,
        address: null,
        count: 0,
      });
      void this.stopListening();
    }
    this.readHead(client);
  }

  /** Collects the request head (HTTP) or the two SOCKS messages, within the byte and time limits. */
  private readHead(client: Socket): void {
    const received = new Received();
    let scanned = 0;
    let phase: "start" | "http" | "greeting" | "request" = "start";
    const done = (): Buffer => {
      clearTimeout(timer);
      client.off("data", onData);
      client.off("end", onEnd);
      client.pause();
      return received.view();
    };
    const fail = (protocol: Protocol, reason: string, answer?: string | Buffer): void => {
      done();
      this.refuse({ host: "", port: 0, protocol, reason });
      if (answer) this.endWith(client, answer);
      else client.destroy();
    };
    const timer = setTimeout(
      () =>
        fail(
          phase === "http" ? "http" : phase === "start" ? "unknown" : "socks5",
          "request not sent in time",
          phase === "http"
            ? httpAnswer("408 Request Timeout", "request head not sent in time")
            : undefined,
        ),
      this.o.headTimeoutMs,
    );
    const onEnd = (): void => fail("unknown", "connection closed before a request");
    const step = (): void => {
      const buffer = received.view();
      if (phase === "start") phase = buffer[0] === 0x05 ? "greeting" : "http";
      if (phase === "http") {
        const end = buffer.indexOf("\r\n\r\n", Math.max(0, scanned - 3));
        scanned = buffer.length;
        if (end >= 0 && end + 4 <= HEAD_LIMITS.bytes) {
          const all = done();
          void this.http(client, all.subarray(0, end + 4), all.subarray(end + 4)).catch(() =>
            client.destroy(),
          );
        } else if (end >= 0 || buffer.length > HEAD_LIMITS.bytes) {
          const why = `request head over ${HEAD_LIMITS.bytes} bytes`;
          fail("http", why, httpAnswer("431 Request Header Fields Too Large", why));
        }
        return;
      }
      if (phase === "greeting") {
        const greeting = parseGreeting(buffer);
        if (greeting.state === "more") return;
        if (greeting.state === "bad") return fail("socks5", greeting.reason);
        if (!greeting.value.noAuth)
          return fail("socks5", "SOCKS client offers no acceptable method", Buffer.from([5, 0xff]));
        client.write(Buffer.from([0x05, 0x00])); // no authentication
        received.drop(greeting.used);
        phase = "request";
      }
      const request = parseRequest(received.view());
      if (request.state === "more") return;
      if (request.state === "bad") return fail("socks5", request.reason, reply(0x01));
      const all = done();
      void this.socks(client, request.value, all.subarray(request.used)).catch(() =>
        client.destroy(),
      );
    };
    const onData = (data: Buffer): void => {
      received.push(data);
      step();
    };
    client.on("data", onData);
    client.on("end", onEnd);
  }

  private endWith(client: Socket, answer: string | Buffer): void {
    client.end(answer, () => client.destroy());
  }

  private async http(client: Socket, head: Buffer, rest: Buffer): Promise<void> {
    const parsed = parseHead(head);
    if (!parsed.ok) {
      this.refuse({
        host: parsed.host,
        port: parsed.port,
        protocol: "http",
        reason: parsed.reason,
      });
      return this.endWith(client, httpAnswer(parsed.status, parsed.reason));
    }
    const r = parsed.request;
    const protocol = r.kind === "connect" ? "connect" : "http";
    const opened = await this.open(r.name, r.port, protocol);
    if (!("socket" in opened))
      return this.endWith(
        client,
        httpAnswer(
          "403 Forbidden",
          `egress to ${r.name}:${r.port} denied by policy: ${opened.reason}`,
        ),
      );
    if (r.kind === "connect") {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      return this.splice(client, opened.socket, rest, null);
    }
    // Exactly one request upstream: the head we built and Content-Length bytes of body.
    const body = rest.subarray(0, r.bodyBytes);
    const first = Buffer.concat([upstreamHead(r), body]);
    this.splice(client, opened.socket, first, r.bodyBytes - body.length);
  }

  private async socks(
    client: Socket,
    request: { command: number; addressType: number; name: string; port: number },
    rest: Buffer,
  ): Promise<void> {
    const deny = (host: string, reason: string, code: number): void => {
      this.refuse({ host, port: request.port, protocol: "socks5", reason });
      this.endWith(client, reply(code));
    };
    if (request.command !== 0x01) return deny("", "only CONNECT is supported", 0x07);
    if (request.addressType !== 0x03)
      return deny("", "addresses are not allowed, only names on the allowlist", 0x02);
    const name = parseHostname(request.name);
    if (!name.ok) return deny(printable(request.name), name.reason, 0x02);
    if (request.port === 0) return deny(name.name, "port is not allowed", 0x02);
    const opened = await this.open(name.name, request.port, "socks5");
    if (!("socket" in opened)) return this.endWith(client, reply(0x02)); // not allowed by ruleset
    client.write(reply(0x00));
    this.splice(client, opened.socket, rest, null);
  }

  /** Decides and connects a parsed name; a refusal is reported here. */
  private async open(name: string, port: number, protocol: Protocol): Promise<Opened> {
    const deny = (reason: string, address: string | null = null): Opened => {
      this.refuse({ host: name, port, protocol, reason, address });
      return { reason, address };
    };
    if (!this.policy.allow.some((p) => matches(p, name)))
      return deny("host is not on the allowlist");
    if (!this.policy.ports.includes(port)) return deny("port is not allowed");
    let addresses: string[];
    const fixed = this.policy.staticHosts[name];
    try {
      addresses = fixed ? [fixed] : (await lookup(name, { all: true })).map((a) => a.address);
    } catch {
      return deny("name does not resolve");
    }
    // A name on the server's private-host list may also reach loopback and
    // private ranges (an internal mirror); every other name only public ones.
    const privateOk = this.policy.privateHosts?.includes(name) ?? false;
    const address = addresses.find(
      (a) =>
        this.policy.allowPrivateAddresses ||
        !isBlockedAddress(a) ||
        (privateOk && isPrivateAllowed(a)),
    );
    if (!address) return deny("name resolves to a refused address range", addresses[0] ?? null);
    const upstream = connect({ host: address, port });
    this.track(upstream);
    upstream.setTimeout(this.o.connectTimeoutMs, () => upstream.destroy());
    const ok = await new Promise<boolean>((resolve) => {
      upstream.once("connect", () => resolve(true));
      upstream.once("close", () => resolve(false));
    });
    if (!ok) return deny("upstream refused the connection", address);
    this.connections++;
    upstream.setTimeout(0);
    upstream.on("close", () =>
      this.onEvent({
        decision: "allowed",
        host: name,
        port,
        protocol,
        reason: null,
        bytes: upstream.bytesRead + upstream.bytesWritten,
        address,
        count: 1,
      }),
    );
    return { socket: upstream };
  }

  /**
   * Pipes both ways with backpressure (a program that does not read makes
   * the upstream wait, not Warden buffer), counting bytes against the run's
   * cap. `clientBytes` bounds what goes up after `first` (null: unbounded).
   */
  private splice(
    client: Socket,
    upstream: Socket,
    first: Buffer,
    clientBytes: number | null,
  ): void {
    let left = clientBytes;
    const count = (n: number): boolean => {
      this.bytes += n;
      if (this.bytes <= this.policy.maxBytes) return true;
      client.destroy();
      upstream.destroy();
      return false;
    };
    const pump = (from: Socket, to: Socket, bounded: boolean): void => {
      from.on("data", (chunk: Buffer) => {
        let data = chunk;
        if (bounded && left !== null) {
          data = data.subarray(0, left);
          left -= data.length;
        }
        if (data.length > 0 && count(data.length) && !to.write(data)) {
          from.pause();
          to.once("drain", () => (bounded && left === 0 ? undefined : from.resume()));
        }
        // The request is complete: what else the program sends is not read.
        if (bounded && left === 0) from.pause();
      });
    };
    if (first.length > 0 && count(first.length)) upstream.write(first);
    pump(client, upstream, true);
    pump(upstream, client, false);
    client.on("end", () => upstream.end());
    upstream.on("end", () =>
      clientBytes === null ? client.end() : client.end(() => client.destroy()),
    );
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    if (left !== 0) client.resume();
  }
}

function httpAnswer(status: string, why: string): string {
  const body = `warden: ${why}\n`;
  return `HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`;
}

/**
 * Bytes received so far, grown by doubling: a head sent one byte at a time
 * costs linear, not quadratic, copying.
 */
class Received {
  private buf = Buffer.alloc(0);
  length = 0;

  push(data: Buffer): void {
    if (this.length + data.length > this.buf.length) {
      const next = Buffer.allocUnsafe(
        Math.max(2 * this.buf.length, this.length + data.length, 512),
      );
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    data.copy(this.buf, this.length);
    this.length += data.length;
  }

  view(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  /** Forgets the first `n` bytes. */
  drop(n: number): void {
    this.buf = Buffer.from(this.view().subarray(n));
    this.length = this.buf.length;
  }
}
