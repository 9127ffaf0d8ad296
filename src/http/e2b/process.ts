/**
 * envd's process.Process service over Warden's background commands: every
 * E2B command (even `commands.run` without `background`) is a background
 * command of the session, so its handle can be listed, fed stdin, killed and
 * reattached. No second process implementation: output caps, the running
 * limit, the cgroup and the session's end all come from the session manager.
 *
 * envd's lifetime rules are kept: Connect-Timeout-Ms kills the command when
 * it passes (the SDK sends 60 s unless `timeoutMs` says otherwise; 0 = none),
 * a client that disconnects does not.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { connectService, PAUSED_MESSAGE, type ServerStream, type Unary } from "./connect.js";
import { PlaneError, toE2bPath, toWorkspacePath, type E2bDeps, type SandboxCall } from "./plane.js";
import {
  AnyRequestSchema,
  CloseStdinRequestSchema,
  ConnectRequestSchema,
  ListRequestSchema,
  SendInputRequestSchema,
  SendSignalRequestSchema,
  StartRequestSchema,
  type ProcessEvent,
} from "./process-schemas.js";
import { pump, subscribe } from "./process-stream.js";
import { ProcessTables } from "./process-table.js";

const KEEPALIVE = { event: { keepalive: {} } };
const DEFAULT_USER = "user";

/**
 * E2B's `user` option arrives as `Authorization: Basic base64("<name>:")`.
 * Warden runs everything as the session's one unprivileged user, so only the
 * default name is taken: root would be a promise the sandbox does not keep.
 */
function checkUser(req: FastifyRequest): void {
  const auth = req.headers.authorization;
  if (auth === undefined) return;
  const m = /^Basic ([A-Za-z0-9+/=]{0,200})$/.exec(auth);
  const name = m ? Buffer.from(m[1]!, "base64").toString("utf8").split(":")[0]! : "";
  if (name === DEFAULT_USER) return;
  throw new PlaneError(
    "permission_denied",
    `user '${name.slice(0, 32)}': Warden runs every command as the sandbox's one unprivileged user; only '${DEFAULT_USER}' (the default) is accepted, root is not available`,
    403,
  );
}

/** Paused (or released) sandboxes run nothing: said in E2B's terms. */
function checkRunning(deps: E2bDeps, call: SandboxCall): void {
  const info = deps.sessions.get(call.sessionId, call.userId);
  if (info.state !== "running") throw new PlaneError("unavailable", PAUSED_MESSAGE, 503);
}

/**
 * Raw shell commands cannot be statically analysed: where the server's
 * policy is block and session commands are refused (run-policy.ts), the
 * adapter refuses them too rather than be a way around it.
 */
function checkPolicy(deps: E2bDeps, call: SandboxCall): void {
  if (call.policy === "block" && deps.config.policy.sessionCommands === "block")
    throw new PlaneError(
      "permission_denied",
      "commands: shell commands cannot be statically analysed, and this sandbox's key policy is block (server setting policy.sessionCommands: block)",
      403,
    );
}

function unimplemented(what: string): Unary<unknown, unknown> {
  return {
    kind: "unary",
    input: AnyRequestSchema,
    handle: () =>
      Promise.reject(
        new PlaneError(
          "unimplemented",
          `process.${what} is not supported by Warden's E2B adapter (no pty; stdin goes through SendInput)`,
          501,
        ),
      ),
  };
}

export function processService(app: FastifyInstance, deps: E2bDeps): void {
  const { sessions } = deps;
  const pids = new ProcessTables(sessions);

  const Start: ServerStream<typeof StartRequestSchema._output, { event: ProcessEvent }> = {
    kind: "stream",
    input: StartRequestSchema,
    keepalive: KEEPALIVE,
    async handle(call, req, send, ctx) {
      checkUser(ctx.request);
      checkRunning(deps, call);
      checkPolicy(deps, call);
      if (req.pty !== undefined && req.pty !== null)
        throw new PlaneError(
          "unimplemented",
          "pty: Warden's E2B adapter runs commands without a terminal (no pty)",
          501,
        );
      const { cmd, args, envs, cwd } = req.process;
      const release = pids.openStream(call);
      try {
        const info = sessions.startBackground(call.sessionId, call.userId, {
          command: [cmd, ...args],
          cwd: cwd === undefined ? undefined : toWorkspacePath(cwd),
          env: envs,
          keepStdin: req.stdin === true,
          timeoutMs: ctx.deadlineMs ?? 0,
        });
        const proc = pids.add(call, {
          commandId: info.id,
          tag: req.tag,
          config: req.process,
          stdinOpen: req.stdin === true,
        });
        // Subscribed before the first await: no output can come before it.
        const events = subscribe(sessions, call, info.id, false);
        await send({ event: { start: { pid: proc.pid } } });
        await pump(events, send, ctx.signal, ctx.deadlineMs);
      } finally {
        release();
      }
    },
  };

  const Connect: ServerStream<typeof ConnectRequestSchema._output, { event: ProcessEvent }> = {
    kind: "stream",
    input: ConnectRequestSchema,
    keepalive: KEEPALIVE,
    async handle(call, req, send, ctx) {
      checkUser(ctx.request);
      checkRunning(deps, call);
      const proc = pids.find(call, req.process);
      const release = pids.openStream(call);
      try {
        const events = subscribe(sessions, call, proc.commandId, true);
        await send({ event: { start: { pid: proc.pid } } });
        // Connect's own deadline ends this stream (connect.ts), not the command.
        await pump(events, send, ctx.signal, null);
      } finally {
        release();
      }
    },
  };

  const List: Unary<unknown, unknown> = {
    kind: "unary",
    input: ListRequestSchema,
    async handle(call) {
      checkRunning(deps, call);
      return {
        processes: pids.running(call).map((p) => ({
          config: {
            cmd: p.config.cmd,
            args: p.config.args,
            envs: p.config.envs,
            ...(p.config.cwd === undefined
              ? {}
              : { cwd: toE2bPath(toWorkspacePath(p.config.cwd)) }),
          },
          pid: p.pid,
          ...(p.tag === undefined ? {} : { tag: p.tag }),
        })),
      };
    },
  };

  const SendInput: Unary<typeof SendInputRequestSchema._output, unknown> = {
    kind: "unary",
    input: SendInputRequestSchema,
    async handle(call, req, ctx) {
      checkUser(ctx.request);
      checkRunning(deps, call);
      if (req.input.pty !== undefined)
        throw new PlaneError("unimplemented", "input.pty: no pty in Warden's E2B adapter", 501);
      const proc = pids.find(call, req.process);
      if (!proc.stdinOpen)
        throw new PlaneError(
          "failed_precondition",
          "stdin not enabled or closed (start the command with stdin: true)",
          400,
        );
      const bytes = req.input.stdin ?? Buffer.alloc(0);
      let text: string;
      try {
        text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch {
        throw new PlaneError(
          "invalid_argument",
          "input.stdin: Warden passes standard input as UTF-8 text, and these bytes are not UTF-8",
          400,
        );
      }
      if (text)
        await sessions.stdinBackground(call.sessionId, call.userId, proc.commandId, text, false);
      return {};
    },
  };

  const CloseStdin: Unary<typeof CloseStdinRequestSchema._output, unknown> = {
    kind: "unary",
    input: CloseStdinRequestSchema,
    async handle(call, req, ctx) {
      checkUser(ctx.request);
      checkRunning(deps, call);
      const proc = pids.find(call, req.process);
      if (!proc.stdinOpen)
        throw new PlaneError("failed_precondition", "stdin not enabled or closed", 400);
      await sessions.stdinBackground(call.sessionId, call.userId, proc.commandId, "", true);
      proc.stdinOpen = false;
      return {};
    },
  };

  const SendSignal: Unary<typeof SendSignalRequestSchema._output, unknown> = {
    kind: "unary",
    input: SendSignalRequestSchema,
    async handle(call, req, ctx) {
      checkUser(ctx.request);
      checkRunning(deps, call);
      const proc = pids.find(call, req.process);
      await sessions.signalBackground(call.sessionId, call.userId, proc.commandId, req.signal);
      return {};
    },
  };

  connectService(app, deps, "process.Process", {
    Start,
    Connect,
    List,
    SendInput,
    CloseStdin,
    SendSignal,
    Update: unimplemented("Update (pty resize)"),
    StreamInput: unimplemented("StreamInput (client streaming)"),
  });
}
