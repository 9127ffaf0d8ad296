/** A Piston socket client for tests: records every message and how the socket closed. */
import WebSocket from "ws";
import type { TestServer } from "../helpers/server.js";

export interface PistonMessage {
  type: string;
  [key: string]: unknown;
}

export interface SocketClient {
  ws: WebSocket;
  messages: PistonMessage[];
  /** Resolves when the socket closes: its code and reason. */
  closed: Promise<{ code: number; reason: string }>;
  send(message: unknown): void;
  /** Resolves with the first message (from `from` on) that matches. */
  next(match: (m: PistonMessage) => boolean, from?: number): Promise<PistonMessage>;
  /** stdout so far. */
  stdout(): string;
}

export function connect(url: string, token?: string): Promise<SocketClient> {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/api/v2/connect`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  const messages: PistonMessage[] = [];
  const waiters: (() => void)[] = [];
  ws.on("message", (data: Buffer) => {
    messages.push(JSON.parse(data.toString()) as PistonMessage);
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on("close", (code, reason) => {
      resolve({ code, reason: reason.toString() });
      for (const w of waiters.splice(0)) w();
    }),
  );
  ws.on("error", () => undefined);
  const client: SocketClient = {
    ws,
    messages,
    closed,
    send: (message) => ws.send(typeof message === "string" ? message : JSON.stringify(message)),
    next(match, from = 0) {
      return new Promise((resolve, reject) => {
        const look = (): void => {
          const found = messages.slice(from).find(match);
          if (found) return resolve(found);
          if (ws.readyState === WebSocket.CLOSED)
            return reject(new Error(`closed; messages: ${JSON.stringify(messages)}`));
          waiters.push(look);
        };
        look();
      });
    },
    stdout: () =>
      messages
        .filter((m) => m.type === "data" && m.stream === "stdout")
        .map((m) => m.data)
        .join(""),
  };
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(client));
    ws.once("unexpected-response", (_req, res) =>
      reject(
        Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }),
      ),
    );
    ws.once("error", reject);
  });
}

/** The newest execution's record, as its owner lists it (undefined: none yet). */
export async function lastExecution(
  server: TestServer,
): Promise<{ status: string; error?: { message: string } | null } | undefined> {
  const r = (await (await server.request("GET", "/v1/executions?limit=1")).json()) as {
    executions: { status: string; error?: { message: string } | null }[];
  };
  return r.executions[0];
}
