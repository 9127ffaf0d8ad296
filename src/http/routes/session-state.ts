/** REST: pausing and resuming sessions, their snapshots, and watching their files (docs/pause.md). */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { SessionSchema } from "../../contract/session.js";
import { SnapshotIdSchema, SnapshotSchema } from "../../contract/snapshot.js";
import type { SessionManager } from "../../sessions/manager.js";
import type { WatchEvent } from "../../sessions/watch.js";
import { hasScope, type Actor } from "../auth.js";
import { emptyBodyIsNoBody } from "../empty-body.js";
import { ErrorResponses } from "../schemas.js";
import { openEventStream, type EventStream } from "../sse.js";
import { Params } from "./sessions.js";

const errors = ErrorResponses;
const SnapshotParams = z.object({ id: SnapshotIdSchema });

export const sessionStateRoutes: FastifyPluginAsyncZod<{ sessions: SessionManager }> = async (
  app,
  { sessions },
) => {
  const me = (actor: Actor | null): { userId: string; admin: boolean } => ({
    userId: actor!.userId,
    admin: hasScope(actor, "admin"),
  });

  app.post(
    "/v1/sessions/:id/pause",
    {
      config: { scope: "sessions" },
      preParsing: emptyBodyIsNoBody,
      schema: {
        summary: "Pause a session: freeze everything in it",
        description:
          "Every process in the session is frozen by the kernel (cgroup freezer): no CPU is used, memory is kept (and still counted), the TTL clock stops and the idle timeout does not run. Calls to it answer 409 SESSION_PAUSED until it is resumed. A session paused longer than sessions.pausedSnapshotAfter is snapshotted and released. Refused (503 SANDBOX_BUSY) while a call runs in it.",
        params: Params,
        response: { 200: SessionSchema, ...errors },
      },
    },
    async (request) => sessions.pause(request.params.id, request.actor!.userId),
  );

  app.post(
    "/v1/sessions/:id/resume",
    {
      config: { scope: "sessions" },
      preParsing: emptyBodyIsNoBody,
      schema: {
        summary: "Resume a paused session",
        description:
          "Thaws it: processes, code contexts and background commands go on where they stopped. Its TTL runs again from what was left (never past maxSessionTimeout from creation). Counts in maxSessionsPerUser again.",
        params: Params,
        response: { 200: SessionSchema, ...errors },
      },
    },
    async (request) => sessions.resume(request.params.id, request.actor!.userId),
  );

  app.post(
    "/v1/sessions/:id/snapshots",
    {
      config: { scope: "sessions" },
      preParsing: emptyBodyIsNoBody,
      schema: {
        summary: "Snapshot a session's workspace",
        description:
          "Saves /workspace and the list of packages installed in it, up to sessions.maxSnapshotMb. Start a session from it with POST /v1/sessions {snapshot}. Processes, memory, code contexts and background commands are not kept.",
        params: Params,
        response: { 201: SnapshotSchema, ...errors },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await sessions.snapshot(request.params.id, request.actor!.userId)),
  );

  app.get(
    "/v1/snapshots",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "Your snapshots (admins: all)",
        response: { 200: z.array(SnapshotSchema), ...errors },
      },
    },
    async (request) => {
      const { userId, admin } = me(request.actor);
      return sessions.snapshotStore().list(userId, admin);
    },
  );

  app.get(
    "/v1/snapshots/:id",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "One snapshot",
        params: SnapshotParams,
        response: { 200: SnapshotSchema, ...errors },
      },
    },
    async (request) => {
      const { userId, admin } = me(request.actor);
      return sessions.snapshotStore().get(request.params.id, userId, admin);
    },
  );

  app.delete(
    "/v1/snapshots/:id",
    {
      config: { scope: "sessions" },
      preParsing: emptyBodyIsNoBody,
      schema: { summary: "Delete a snapshot", params: SnapshotParams },
    },
    async (request, reply) => {
      const { userId, admin } = me(request.actor);
      sessions.snapshotStore().delete(request.params.id, userId, admin);
      return reply.status(204).send();
    },
  );

  app.get(
    "/v1/sessions/:id/watch",
    {
      config: { scope: "sessions" },
      schema: {
        summary: "Watch a directory of the session (Server-Sent Events)",
        description:
          "`watching` first, then `change` events {kind: created | modified | removed | overflow, path (relative to /workspace), type: file | directory | symlink | other | null}, coalesced (at most one per path every 100 ms; `overflow` when some were dropped). Ends with `end` when the session ends. At most sessions.maxWatches per session.",
        params: Params,
        querystring: z
          .object({
            path: z
              .string()
              .max(4096)
              .default("/workspace")
              .describe("A directory in /workspace (absolute or relative to it)."),
            recursive: z.enum(["true", "false"]).default("false"),
          })
          .strict(),
      },
    },
    async (request, reply) => {
      let stream: EventStream | null = null;
      const early: WatchEvent[] = [];
      let ended: string | null = null;
      const end = (why: string): void => {
        ended = why;
        if (!stream) return;
        stream.send("end", { reason: why });
        stream.end();
      };
      const stop = await sessions.watch(
        request.params.id,
        request.actor!.userId,
        { path: request.query.path, recursive: request.query.recursive === "true" },
        (event) => (stream ? stream.send("change", event) : early.push(event)),
        (error) => end(error ? error.message : "stopped"),
      );
      stream = openEventStream(request, reply);
      // First event at once: the client knows the watch is set (and gets the headers now).
      stream.send("watching", {
        path: request.query.path,
        recursive: request.query.recursive === "true",
      });
      for (const event of early.splice(0)) stream.send("change", event);
      if (ended !== null) end(ended);
      stream.onClose(stop);
    },
  );
};
