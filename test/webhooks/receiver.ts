/** A webhook receiver on 127.0.0.1 for tests: records every request, answers as told. */
import { createServer, type IncomingMessage, type ServerResponse, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

export type Answer = (req: Received, res: ServerResponse, n: number) => void;

export interface Receiver {
  url: string;
  received: Received[];
  /** What the next request gets; by default 200 "ok". */
  answer: Answer;
  close(): Promise<void>;
  server: Server;
}

export async function startReceiver(answer?: Answer): Promise<Receiver> {
  const r = {
    received: [] as Received[],
    answer: answer ?? ((_req, res) => res.end("ok")),
  } as Receiver;
  r.server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const got = {
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      r.received.push(got);
      r.answer(got, res, r.received.length);
    });
  });
  await new Promise<void>((resolve) => r.server.listen(0, "127.0.0.1", resolve));
  r.url = `http://127.0.0.1:${(r.server.address() as AddressInfo).port}`;
  r.close = () =>
    new Promise((resolve) => {
      r.server.closeAllConnections();
      r.server.close(() => resolve());
    });
  return r;
}
