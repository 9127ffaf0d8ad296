/**
 * envd's `filesystem.Filesystem` Connect service over the session manager:
 * Stat, ListDir, MakeDir, Move, Remove and the WatchDir stream. Paths come as
 * E2B writes them (`/home/user/...`) and are mapped onto the workspace; each
 * call first asks the agent where the path leads (`stat`), so that a link the
 * sandbox made out of the workspace is refused here with a message, as any
 * absolute path outside /home/user is. (The agent's answer is the sandbox's
 * own view: the files behind such a link are the sandbox's, never the host's.)
 */
import type { FastifyInstance } from "fastify";
import { posix } from "node:path";
import { WardenError } from "../../errors.js";
import type { PathStat } from "../../sessions/session.js";
import type { WatchEvent } from "../../sessions/watch.js";
import type { ZodType } from "zod";
import { connectService, type CallContext, type Unary } from "./connect.js";
import {
  AnyRequestSchema,
  EVENT_TYPE,
  ListDirRequestSchema,
  listedEntry,
  MoveRequestSchema,
  PathRequestSchema,
  statEntry,
  WatchDirRequestSchema,
  type EntryInfo,
  type ListDirRequest,
  type MoveRequest,
  type PathRequest,
  type WatchDirRequest,
} from "./fs-schemas.js";
import { PlaneError, toE2bPath, toWorkspacePath, type E2bDeps, type SandboxCall } from "./plane.js";

/** Entries one ListDir may answer with, all levels together. */
export const MAX_LISTED_ENTRIES = 10_000;
/** Watch events waiting for a client that reads slower than they come. */
export const MAX_PENDING_WATCH_EVENTS = 256;

/**
 * E2B's default user is the only one: envd would run a call as another
 * (`Authorization: Basic base64("root:")`), Warden runs all as the session's.
 */
export function checkUser(authorization: string | undefined): void {
  const m = /^Basic\s+([A-Za-z0-9+/=]{1,512})$/i.exec(authorization ?? "");
  if (!authorization) return;
  const user = m ? Buffer.from(m[1]!, "base64").toString("utf8").split(":")[0] : null;
  if (user === "user" || user === "") return;
  throw new PlaneError(
    "permission_denied",
    `user ${JSON.stringify(user ?? "?")}: Warden runs every call as the session's one unprivileged user (E2B's "user")`,
    403,
  );
}

const outside = (p: string): PlaneError =>
  new PlaneError(
    "invalid_argument",
    `path ${p}: leads out of /home/user through a link; Warden's E2B adapter reaches the workspace only`,
    400,
  );
const missing = (p: string): PlaneError =>
  new PlaneError("not_found", `path ${p}: no such file or directory`, 404);

/** A path's stat once it is known to stay in the workspace. */
export async function statInside(deps: E2bDeps, call: SandboxCall, rel: string): Promise<PathStat> {
  const s = await deps.sessions.stat(call.sessionId, call.userId, rel);
  if (!s.inside) throw outside(toE2bPath(rel));
  return s;
}

/** The workspace path a directory argument resolves to (a link to a directory inside is followed). */
async function directory(deps: E2bDeps, call: SandboxCall, rel: string): Promise<string> {
  const s = await statInside(deps, call, rel);
  if (!s.entry) throw missing(toE2bPath(rel));
  if (s.real === null) throw outside(toE2bPath(rel));
  if (s.entry.type !== "directory" && s.entry.type !== "symlink")
    throw new PlaneError("invalid_argument", `path ${toE2bPath(rel)}: not a directory`, 400);
  return s.real;
}

async function entryOf(deps: E2bDeps, call: SandboxCall, rel: string): Promise<EntryInfo> {
  const s = await statInside(deps, call, rel);
  if (!s.entry) throw missing(toE2bPath(rel));
  return statEntry(rel, s.entry);
}

function argPath(p: string, ctx: CallContext): string {
  checkUser(ctx.request.headers.authorization);
  return toWorkspacePath(p);
}

async function listDir(deps: E2bDeps, call: SandboxCall, req: ListDirRequest, ctx: CallContext) {
  const rel = argPath(req.path, ctx);
  const depth = Math.max(1, req.depth);
  const root = await directory(deps, call, rel);
  const entries: EntryInfo[] = [];
  // Breadth first over real directories only (a listing's links are not followed).
  let level: { real: string; shown: string }[] = [{ real: root, shown: rel }];
  for (let d = 1; d <= depth && level.length > 0; d++) {
    const next: typeof level = [];
    for (const dir of level) {
      if (ctx.signal.aborted) throw new PlaneError("canceled", "the client went away", 499);
      const listed = await deps.sessions.listFiles(call.sessionId, call.userId, dir.real);
      if (entries.length + listed.length > MAX_LISTED_ENTRIES)
        throw new PlaneError(
          "failed_precondition",
          `listing ${toE2bPath(rel)} to depth ${depth} passes ${MAX_LISTED_ENTRIES} entries (the adapter's bound); list a smaller depth or a subdirectory`,
          400,
        );
      for (const e of listed) {
        const shown = posix.join(dir.shown, e.name);
        entries.push(listedEntry(shown, e));
        if (e.type === "directory") next.push({ real: posix.join(dir.real, e.name), shown });
      }
    }
    level = next;
  }
  return { entries };
}

async function makeDir(deps: E2bDeps, call: SandboxCall, req: PathRequest, ctx: CallContext) {
  const rel = argPath(req.path, ctx);
  const s = await statInside(deps, call, rel);
  if (s.entry?.type === "directory")
    throw new PlaneError("already_exists", `directory ${toE2bPath(rel)} already exists`, 409);
  if (s.entry)
    throw new PlaneError(
      "invalid_argument",
      `path ${toE2bPath(rel)} already exists but is not a directory`,
      400,
    );
  await deps.sessions.makeDir(call.sessionId, call.userId, rel);
  return { entry: await entryOf(deps, call, rel) };
}

async function move(deps: E2bDeps, call: SandboxCall, req: MoveRequest, ctx: CallContext) {
  const source = argPath(req.source, ctx);
  const destination = toWorkspacePath(req.destination);
  if (source === "." || destination === ".")
    throw new PlaneError("invalid_argument", "Move: /home/user itself cannot be moved", 400);
  const from = await statInside(deps, call, source);
  if (!from.entry) throw missing(toE2bPath(source));
  await statInside(deps, call, destination);
  await deps.sessions.move(call.sessionId, call.userId, source, destination);
  return { entry: await entryOf(deps, call, destination) };
}

async function remove(deps: E2bDeps, call: SandboxCall, req: PathRequest, ctx: CallContext) {
  const rel = argPath(req.path, ctx);
  if (rel === ".")
    throw new PlaneError("invalid_argument", "Remove: /home/user itself cannot be removed", 400);
  const s = await statInside(deps, call, rel);
  // envd removes with RemoveAll: a missing path is no error.
  if (s.entry) await deps.sessions.deleteFile(call.sessionId, call.userId, rel);
  return {};
}

/**
 * WatchDir: the manager's watch (inotify in the session, coalesced per
 * 100 ms) as envd's events. The watch ends with the stream: when the client
 * goes away, when its deadline passes, when the session ends, or when more
 * events wait than a client that reads would ever leave (a client that never
 * reads holds no more than MAX_PENDING_WATCH_EVENTS here).
 */
async function watchDir(
  deps: E2bDeps,
  call: SandboxCall,
  req: WatchDirRequest,
  send: (msg: unknown) => Promise<void>,
  ctx: CallContext,
): Promise<void> {
  const rel = argPath(req.path, ctx);
  const real = await directory(deps, call, rel);
  let pending = 0;
  let chain = Promise.resolve();
  let end!: (error: PlaneError | null) => void;
  const ended = new Promise<PlaneError | null>((resolve) => (end = resolve));
  const base = real === "." ? "" : real;
  const onEvent = (event: WatchEvent): void => {
    if (event.kind === "overflow")
      return end(
        new PlaneError(
          "resource_exhausted",
          "watch: more changes at once than the session reports (some were dropped); watch again",
          429,
        ),
      );
    if (++pending > MAX_PENDING_WATCH_EVENTS)
      return end(
        new PlaneError(
          "resource_exhausted",
          `watch: ${MAX_PENDING_WATCH_EVENTS} events wait for a client that does not read them`,
          429,
        ),
      );
    const name = posix.relative(base, event.path);
    const type = EVENT_TYPE[event.kind];
    chain = chain.then(async () => {
      const entry =
        req.includeEntry && event.kind !== "removed"
          ? await deps.sessions
              .stat(call.sessionId, call.userId, event.path)
              .then((s) => (s.entry ? statEntry(event.path, s.entry) : undefined))
              .catch(() => undefined)
          : undefined;
      await send({
        filesystem: { name, type, ...(entry ? { entry } : {}) },
      });
      pending--;
    });
  };
  const stop = await deps.sessions.watch(
    call.sessionId,
    call.userId,
    { path: real, recursive: req.recursive },
    onEvent,
    (error) =>
      end(
        error
          ? new PlaneError("unavailable", `watch ended with the sandbox: ${error.message}`, 503)
          : null,
      ),
  );
  const gone = (): void => end(null);
  ctx.signal.addEventListener("abort", gone, { once: true });
  const timer =
    ctx.deadlineMs !== null && ctx.deadlineMs > 0
      ? setTimeout(
          () => end(new PlaneError("deadline_exceeded", "watch: its timeout passed", 504)),
          ctx.deadlineMs,
        )
      : null;
  try {
    await send({ start: {} });
    const error = await ended;
    if (error) throw error;
  } finally {
    stop();
    if (timer) clearTimeout(timer);
    ctx.signal.removeEventListener("abort", gone);
  }
}

const unimplemented = (what: string) => async (): Promise<never> => {
  throw new PlaneError(
    "unimplemented",
    `${what} (polling watchers) is not supported by Warden's E2B adapter: use watchDir`,
    501,
  );
};

/** Agent refusals in the SDK's terms (a full workspace is NotEnoughSpace on /files only). */
function wrap<I, O>(
  fn: (deps: E2bDeps, call: SandboxCall, req: I, ctx: CallContext) => Promise<O>,
  deps: E2bDeps,
) {
  return async (call: SandboxCall, req: I, ctx: CallContext): Promise<O> => {
    try {
      return await fn(deps, call, req, ctx);
    } catch (error) {
      if (error instanceof WardenError && /enospc/.test(error.message))
        throw new PlaneError(
          "failed_precondition",
          "the workspace is full (the session's diskMb)",
          507,
        );
      throw error;
    }
  };
}

function unary<I>(
  input: ZodType<I>,
  handle: (call: SandboxCall, req: I, ctx: CallContext) => Promise<unknown>,
): Unary<I, unknown> {
  return { kind: "unary", input, handle };
}

const stat = async (deps: E2bDeps, call: SandboxCall, req: PathRequest, ctx: CallContext) => ({
  entry: await entryOf(deps, call, argPath(req.path, ctx)),
});

export function filesystemService(app: FastifyInstance, deps: E2bDeps): void {
  connectService(app, deps, "filesystem.Filesystem", {
    Stat: unary(PathRequestSchema, wrap(stat, deps)),
    ListDir: unary(ListDirRequestSchema, wrap(listDir, deps)),
    MakeDir: unary(PathRequestSchema, wrap(makeDir, deps)),
    Move: unary(MoveRequestSchema, wrap(move, deps)),
    Remove: unary(PathRequestSchema, wrap(remove, deps)),
    WatchDir: {
      kind: "stream",
      input: WatchDirRequestSchema,
      keepalive: { keepalive: {} },
      handle: (call, req: WatchDirRequest, send, ctx) => watchDir(deps, call, req, send, ctx),
    },
    CreateWatcher: unary(AnyRequestSchema, unimplemented("CreateWatcher")),
    GetWatcherEvents: unary(AnyRequestSchema, unimplemented("GetWatcherEvents")),
    RemoveWatcher: unary(AnyRequestSchema, unimplemented("RemoveWatcher")),
  });
}
