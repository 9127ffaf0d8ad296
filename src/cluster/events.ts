/**
 * What travels over Redis pub/sub between nodes: an execution's output,
 * status and end (`exec:<id>`), wake-ups for workers when work is queued
 * (`wake`), and kill requests to the worker running an execution
 * (`kill:<workerId>`). Anyone who can reach Redis can publish, so a message
 * is hostile input: it is size-checked before it is parsed and zod-checked
 * after, and one that fails either is dropped (and counted), never thrown.
 */
import { z } from "zod";
import { ExecutionStatusSchema } from "../contract/result.js";
import { TestCaseResultSchema } from "../contract/judging.js";

/** Largest message accepted (bytes). An output chunk is at most 64 KiB of text, JSON-escaped. */
export const MAX_MESSAGE_BYTES = 512 * 1024;
/** Execution and worker ids as Warden makes them; anything else is not ours. */
const Id = z.string().regex(/^[A-Za-z0-9_-]{1,100}$/);

export const ExecMessageSchema = z.discriminatedUnion("t", [
  z.object({
    t: z.literal("output"),
    stream: z.enum(["stdout", "stderr"]),
    data: z.string().max(MAX_MESSAGE_BYTES),
  }),
  z.object({ t: z.literal("status"), status: ExecutionStatusSchema }),
  /** One test case's result (a test-case run); the whole message is size-checked first. */
  z.object({ t: z.literal("test"), result: TestCaseResultSchema }),
  /** The final state is in PostgreSQL before this is sent: the reader loads it from there. */
  z.object({ t: z.literal("end"), status: ExecutionStatusSchema }),
]);
export type ExecMessage = z.infer<typeof ExecMessageSchema>;

export const KillMessageSchema = z.object({
  t: z.literal("kill"),
  id: Id,
  reason: z.string().max(500),
});
export type KillMessage = z.infer<typeof KillMessageSchema>;

export const WakeMessageSchema = z.object({ t: z.literal("wake") });

export const channels = {
  exec: (id: string): string => `exec:${id}`,
  kill: (workerId: string): string => `kill:${workerId}`,
  wake: (): string => "wake",
};

/** Parses a message with `schema`; null (drop it) when it is too big, not JSON or not the shape. */
export function parseMessage<T>(schema: z.ZodType<T>, raw: string | Buffer): T | null {
  if (Buffer.byteLength(raw) > MAX_MESSAGE_BYTES) return null;
  let json: unknown;
  try {
    json = JSON.parse(typeof raw === "string" ? raw : raw.toString("utf8"));
  } catch {
    return null;
  }
  const parsed = schema.safeParse(json);
  return parsed.success ? parsed.data : null;
}
