/**
 * The messages of envd's process.Process service as they travel in Connect's
 * JSON codec (proto3 JSON: lowerCamel names, defaults omitted, bytes as
 * standard base64, enums by name or number, a oneof as its one set field).
 * Our own definitions of the wire format; bounds are Warden's.
 */
import { z } from "zod";

/** One SendInput: the SDK sends the whole string it is given in one call. */
export const MAX_STDIN_BYTES = 1024 * 1024;
const MAX_ARGS = 1024;
const MAX_ARG_BYTES = 128 * 1024;

const BASE64 =
  /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

/** `bytes`: standard base64 (URL-safe accepted too, as protobuf's JSON parsers do). */
export const Bytes = (field: string, maxBytes: number) =>
  z
    .string()
    .max(Math.ceil(maxBytes / 3) * 4 + 4, `${field}: at most ${maxBytes} bytes`)
    .transform((s, ctx) => {
      const std = s.replaceAll("-", "+").replaceAll("_", "/");
      if (!BASE64.test(std)) {
        ctx.addIssue({ code: "custom", message: `${field}: not base64` });
        return z.NEVER;
      }
      const bytes = Buffer.from(std, "base64");
      if (bytes.length > maxBytes) {
        ctx.addIssue({ code: "custom", message: `${field}: at most ${maxBytes} bytes` });
        return z.NEVER;
      }
      return bytes;
    });

/** uint32 pid: a number, or its decimal string (proto3 JSON allows both). */
const Pid = z
  .union([z.number().int().min(0).max(0xffffffff), z.string().regex(/^\d{1,10}$/)])
  .transform(Number);

const Tag = z.string().max(256, "tag: at most 256 characters");

export const ProcessConfigSchema = z.object({
  cmd: z.string().min(1, "process.cmd: required").max(4096),
  args: z
    .array(z.string().max(MAX_ARG_BYTES, `process.args: each at most ${MAX_ARG_BYTES} characters`))
    .max(MAX_ARGS, `process.args: at most ${MAX_ARGS}`)
    .default([]),
  envs: z
    .record(
      z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "process.envs: names are [A-Za-z_][A-Za-z0-9_]*"),
      z.string().max(32_768),
    )
    .refine((e) => Object.keys(e).length <= 256, "process.envs: at most 256")
    .default({}),
  cwd: z.string().max(4096).optional(),
});
export type ProcessConfig = z.infer<typeof ProcessConfigSchema>;

/** A process named by its pid or its tag. */
export const SelectorSchema = z
  .object({ pid: Pid.optional(), tag: Tag.optional() })
  .refine((s) => (s.pid === undefined) !== (s.tag === undefined), "process: give pid or tag");
export type Selector = z.infer<typeof SelectorSchema>;

export const StartRequestSchema = z.object({
  process: ProcessConfigSchema,
  pty: z.unknown().optional(),
  tag: Tag.optional(),
  stdin: z.boolean().optional(),
});

export const ConnectRequestSchema = z.object({ process: SelectorSchema });
export const ListRequestSchema = z.object({}).passthrough();

export const SendInputRequestSchema = z.object({
  process: SelectorSchema,
  input: z
    .object({
      stdin: Bytes("input.stdin", MAX_STDIN_BYTES).optional(),
      pty: z.string().optional(),
    })
    .default({}),
});

export const CloseStdinRequestSchema = z.object({ process: SelectorSchema });

/** Only SIGKILL and SIGTERM exist in envd's Signal enum. */
const SIGNAL: Record<string, "SIGKILL" | "SIGTERM"> = {
  SIGNAL_SIGKILL: "SIGKILL",
  "9": "SIGKILL",
  SIGNAL_SIGTERM: "SIGTERM",
  "15": "SIGTERM",
};
export const SendSignalRequestSchema = z.object({
  process: SelectorSchema,
  signal: z.union([z.string(), z.number()]).transform((v, ctx) => {
    const s = SIGNAL[String(v)];
    if (!s) {
      ctx.addIssue({ code: "custom", message: "signal: SIGNAL_SIGKILL or SIGNAL_SIGTERM" });
      return z.NEVER;
    }
    return s;
  }),
});

export const AnyRequestSchema = z.unknown();

/** ProcessEvent (a oneof) and its parts, as sent. */
export type ProcessEvent =
  | { start: { pid: number } }
  | { data: { stdout: string } | { stderr: string } }
  | { end: { exitCode?: number; exited?: boolean; status: string; error?: string } }
  | { keepalive: Record<string, never> };
