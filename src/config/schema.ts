import { isIP } from "node:net";
import { z } from "zod";
import { SessionsConfigSchema } from "./sessions-config.js";
import { UsageConfigSchema } from "./usage-config.js";
import { Judge0ConfigSchema } from "./judge0-config.js";
import { E2bConfigSchema } from "./e2b-config.js";
import { GvisorConfigSchema } from "./gvisor-config.js";
import { IsolationSchema } from "../contract/isolation.js";
import { ClusterConfigSchema } from "./cluster-config.js";
import { JudgingConfigSchema } from "./judging-config.js";
import { parseHostname, parsePattern } from "../util/hostname.js";
import { RuntimeDefinitionSchema } from "./runtime-definition.js";
import { EnvironmentsConfigSchema } from "./environments.js";
import { WebhooksConfigSchema } from "./webhooks-config.js";
import { DashboardConfigSchema } from "./dashboard-config.js";

const MiB = 1024 * 1024;

/** Default limits applied to a run that does not name its own. */
export const DefaultLimitsSchema = z
  .object({
    memoryMb: z.number().int().min(16).default(512).describe("Memory limit (MiB); swap is off."),
    cpuPercent: z
      .number()
      .min(1)
      .max(100)
      .default(80)
      .describe("Share of the host's total CPU capacity (all cores), in percent."),
    diskMb: z
      .number()
      .int()
      .min(1)
      .default(512)
      .describe("Size of the sandbox's private tmpfs holding /workspace and /tmp (MiB)."),
    pids: z.number().int().min(8).default(128).describe("Maximum processes and threads."),
    outputBytes: z
      .number()
      .int()
      .min(1024)
      .default(1 * MiB)
      .describe("Cap on each of stdout and stderr (bytes); more ends the run as output_limit."),
    openFiles: z.number().int().min(16).default(256).describe("RLIMIT_NOFILE of every process."),
  })
  .strict();

export const PoolConfigSchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe("Start sandboxes ahead of requests; off, every run starts cold."),
    prewarm: z
      .array(z.string().min(1).max(64))
      .max(16)
      .default(["python"])
      .describe("Languages whose sandboxes are started before the first request asks."),
    idleBoxes: z
      .number()
      .int()
      .min(0)
      .max(64)
      .default(1)
      .describe("Started sandboxes a prewarmed language keeps when no requests come."),
    maxPerTemplate: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(8)
      .describe(
        "Started sandboxes per language and start-time limits at most (the recent rate sizes it).",
      ),
    maxBoxes: z
      .number()
      .int()
      .min(0)
      .max(1024)
      .default(32)
      .describe("Started sandboxes in all at most."),
    maxMemoryMb: z
      .number()
      .int()
      .min(0)
      .default(512)
      .describe("Memory the started sandboxes may use together (MiB, read from their cgroups)."),
    idleMs: z
      .number()
      .int()
      .min(1000)
      .default(60_000)
      .describe("After this long without a request, a language keeps only its idle sandboxes."),
  })
  .strict();

export const SandboxHostConfigSchema = z
  .object({
    bwrapPath: z.string().default("/usr/bin/bwrap").describe("The bubblewrap binary."),
    nativeDir: z
      .string()
      .optional()
      .describe(
        "Directory holding warden-exec, warden-init and seccomp.bpf (default: build/native).",
      ),
    uidBase: z
      .number()
      .int()
      .min(1000)
      .max(4_000_000_000)
      .default(700_000)
      .describe(
        "First host uid (and gid) handed to sandboxes; the range must belong to no one else.",
      ),
    uidCount: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(2000)
      .describe("Size of the uid range."),
    cgroupParent: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/)
      .default("warden")
      .describe("Name of Warden's cgroup under each hierarchy's root."),
    searchPath: z
      .array(z.string().startsWith("/"))
      .default(["/usr/local/bin", "/usr/bin", "/bin"])
      .describe("System directories searched for runtime binaries (never a user's home)."),
    pool: PoolConfigSchema.default(PoolConfigSchema.parse({})).describe(
      "The warm pool: sandboxes started ahead of their requests.",
    ),
    isolation: IsolationSchema.default("namespaces").describe(
      "The tier a run gets when neither it nor its key names one (docs/isolation.md).",
    ),
    gvisor: GvisorConfigSchema.default(GvisorConfigSchema.parse({})).describe(
      "The gVisor tier (docs/isolation.md).",
    ),
  })
  .strict();

/**
 * A host name as the egress proxy parses it (src/util/hostname.ts), so an
 * entry the proxy would refuse at its first request is refused when the
 * config loads instead.
 */
const HostNameSchema = z.string().superRefine((name, ctx) => {
  const parsed = parseHostname(name);
  if (!parsed.ok) ctx.addIssue({ code: "custom", message: `not a host name: ${parsed.reason}` });
});
/** An allowlist entry: a host name, or `*.` and a domain (no bare `*`). */
const AllowEntrySchema = z.string().superRefine((entry, ctx) => {
  const parsed = parsePattern(entry);
  if (!parsed.ok)
    ctx.addIssue({
      code: "custom",
      message: `not a host name or *.domain pattern: ${parsed.reason}`,
    });
});

export const NetworkConfigSchema = z
  .object({
    allow: z
      .array(AllowEntrySchema)
      .default([])
      .describe(
        "Server-wide egress allowlist (host names, *.domain); requests may ask only within it. Empty = no egress for anyone.",
      ),
    ports: z
      .array(z.number().int().min(1).max(65_535))
      .default([80, 443])
      .describe("Ports reachable through the proxy."),
    maxEgressBytes: z
      .number()
      .int()
      .min(0)
      .default(100 * MiB)
      .describe("Bytes one execution may move through the proxy."),
    maxConnections: z
      .number()
      .int()
      .min(1)
      .default(256)
      .describe("Connections one execution may open."),
    staticHosts: z
      .record(
        HostNameSchema,
        z.string().refine((a) => isIP(a) !== 0, "must be an IP address"),
      )
      .default({})
      .describe("Name → address answers the proxy uses before DNS (tests, split horizons)."),
    allowPrivateAddresses: z
      .boolean()
      .default(false)
      .describe("TEST ONLY: let allowed names resolve to loopback/private/metadata addresses."),
    privateHosts: z
      .array(HostNameSchema)
      .max(64)
      .default([])
      .describe(
        "Host names (exact) that may resolve to loopback or private addresses, e.g. an internal package mirror; config only, never from a request or key. Link-local and cloud metadata addresses stay refused. Every other name keeps full SSRF protection.",
      ),
  })
  .strict();

const WindowSchema = z
  .object({
    burst: z.number().int().min(1).describe("Requests per second."),
    perMinute: z.number().int().min(1).describe("Requests per minute."),
    perHour: z.number().int().min(1).describe("Requests per hour."),
  })
  .strict();

/**
 * Connection limits of the HTTP server. Node's and Fastify's defaults let one
 * client hold the service (no body timeout, a 72 s keep-alive, unbounded
 * pipelining and connections), so each is set here; docs/boundary/http.md
 * says which attack each one stops.
 */
export const ConnectionLimitsSchema = z
  .object({
    headersTimeoutMs: z
      .number()
      .int()
      .min(100)
      .default(10_000)
      .describe(
        "A request's headers must all arrive within this (ms) of its first byte, else 408 (slowloris; also a silent new connection).",
      ),
    requestTimeoutMs: z
      .number()
      .int()
      .min(100)
      .default(60_000)
      .describe(
        "A whole request, headers and body, must arrive within this (ms), else 408 (slow bodies). Waiting for the answer does not count.",
      ),
    keepAliveTimeoutMs: z
      .number()
      .int()
      .min(100)
      .default(30_000)
      .describe(
        "An idle keep-alive connection is closed after this (ms). Clients reuse a connection until shortly before it, so a short value makes requests that cross the server's close (a reset, not an answer) common on busy clients; idle connections are bounded by the connection caps.",
      ),
    maxRequestsPerSocket: z
      .number()
      .int()
      .min(1)
      .default(100)
      .describe(
        "Requests one connection may carry; later pipelined ones get 503 and the connection closes (pipelined floods).",
      ),
    maxHeaderBytes: z
      .number()
      .int()
      .min(1024)
      .max(1024 * 1024)
      .default(16_384)
      .describe("Request line plus headers, in bytes; more gets 431."),
    maxUrlBytes: z
      .number()
      .int()
      .min(256)
      .default(8192)
      .describe("Longest request target (path and query), in bytes; more gets 414."),
    maxConnections: z
      .number()
      .int()
      .min(1)
      .default(1024)
      .describe("Open connections, all clients together; more are closed at once."),
    maxConnectionsPerIp: z
      .number()
      .int()
      .min(1)
      .default(128)
      .describe(
        "Open connections from one client address (behind a proxy, the proxy's); more are closed at once.",
      ),
    maxOpenRequestsPerKey: z
      .number()
      .int()
      .min(1)
      .default(64)
      .describe(
        "Requests one key (or the anonymous user) may have in progress at once: SSE streams, waits for a result, MCP calls; more get 429.",
      ),
    maxOpenRequestsPerIp: z
      .number()
      .int()
      .min(1)
      .default(128)
      .describe("Requests in progress at once from one client address; more get 429."),
    maxJsonDepth: z
      .number()
      .int()
      .min(4)
      .max(1000)
      .default(64)
      .describe("Deepest nesting of arrays and objects in a JSON body; deeper gets 400 unparsed."),
    maxJsonKeys: z
      .number()
      .int()
      .min(16)
      .default(10_000)
      .describe("Most members of one JSON object in a body; more gets 400 unparsed."),
    maxOutputInFlightMb: z
      .number()
      .int()
      .min(16)
      .default(512)
      .describe(
        "Memory that finished executions' stored output may hold while being answered (GET, event streams), counted at three times its bytes (MiB). Past it, or past a quarter of it for a key's second read at once, the request gets 503 SANDBOX_BUSY.",
      ),
    refusalLogPerWindow: z
      .number()
      .int()
      .min(0)
      .default(20)
      .describe(
        "Refusals (bad key, rate limit, bad request...) logged and audited one by one per client address and kind in each window; the rest become one summary event.",
      ),
    refusalLogWindowMs: z
      .number()
      .int()
      .min(1000)
      .default(60_000)
      .describe("The window of refusalLogPerWindow (ms)."),
  })
  .strict()
  .refine((c) => c.headersTimeoutMs <= c.requestTimeoutMs, {
    path: ["headersTimeoutMs"],
    message: "must not exceed requestTimeoutMs",
  })
  .refine((c) => c.maxUrlBytes < c.maxHeaderBytes, {
    path: ["maxUrlBytes"],
    message: "must be less than maxHeaderBytes (the request line counts as a header)",
  });

export const ServerConfigSchema = z
  .object({
    host: z.string().default("127.0.0.1").describe("Listen address (loopback unless you mean it)."),
    port: z.number().int().min(0).max(65_535).default(8080).describe("Listen port."),
    trustProxy: z
      .array(z.string())
      .default([])
      .describe("Proxies (IPs or CIDRs) whose X-Forwarded-For is believed; empty = none."),
    corsOrigins: z
      .array(z.string())
      .default([])
      .describe("Origins allowed by CORS; empty = CORS off."),
    allowedHosts: z
      .array(z.string())
      .default([])
      .describe(
        "Host header values /mcp accepts besides the listen address and localhost (DNS-rebinding protection), e.g. warden.example.com (default ports :80/:443 need not be named).",
      ),
    publicUrl: z
      .url()
      .optional()
      .describe(
        "Base URL clients reach this service at, for links Warden hands out (MCP preview URLs); default: from the request's Host.",
      ),
    bodyLimitBytes: z
      .number()
      .int()
      .min(1024)
      .default(5 * MiB)
      .describe("Largest request body."),
    tls: z
      .object({ certFile: z.string(), keyFile: z.string() })
      .strict()
      .optional()
      .describe("Serve HTTPS (and send HSTS) with this certificate."),
    shutdownGracePeriod: z
      .number()
      .min(0)
      .default(30)
      .describe("On SIGTERM, how long running executions may finish (s)."),
    pistonAnonymous: z
      .boolean()
      .default(false)
      .describe("Let the Piston-compatible routes run without a key, as user `anonymous`."),
    rateLimits: z
      .object({
        perKey: WindowSchema.default({ burst: 50, perMinute: 3000, perHour: 60_000 }),
        perIp: WindowSchema.default({ burst: 100, perMinute: 6000, perHour: 120_000 }),
        anonymous: WindowSchema.default({ burst: 5, perMinute: 60, perHour: 600 }),
      })
      .strict()
      .default({
        perKey: { burst: 50, perMinute: 3000, perHour: 60_000 },
        perIp: { burst: 100, perMinute: 6000, perHour: 120_000 },
        anonymous: { burst: 5, perMinute: 60, perHour: 600 },
      }),
    connections: ConnectionLimitsSchema.default(ConnectionLimitsSchema.parse({})).describe(
      "Timeouts and caps that keep one client from holding the service.",
    ),
  })
  .strict();

/** Allowed unless configured otherwise: documents, images, data, archives; never programs. */
export const DEFAULT_ARTIFACT_TYPES = [
  "text/plain",
  "text/csv",
  "text/markdown",
  "text/html",
  "application/json",
  "application/xml",
  "image/svg+xml",
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
  "image/bmp",
  "image/tiff",
  "application/pdf",
  "application/zip",
  "application/gzip",
  "application/x-tar",
  "audio/wav",
  "audio/mpeg",
  "audio/ogg",
  "video/mp4",
  "video/webm",
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  "application/x-parquet",
];

export const PolicyConfigSchema = z
  .object({
    mode: z
      .enum(["off", "audit", "block"])
      .default("off")
      .describe(
        "Static analysis of python/javascript code: off, audit (record and return findings), block (refuse high-severity findings). A key's own mode overrides it.",
      ),
    analysisTimeout: z
      .number()
      .positive()
      .default(10)
      .describe("Wall-clock limit of one Python analysis sandbox (s)."),
    analysisMemoryMb: z
      .number()
      .int()
      .min(32)
      .default(256)
      .describe("Memory limit of one Python analysis sandbox (MiB)."),
    maxConcurrentAnalyses: z
      .number()
      .int()
      .min(1)
      .default(4)
      .describe("Analysis sandboxes running at once; more wait, up to 100, then SANDBOX_BUSY."),
    sessionCommands: z
      .enum(["allow", "block"])
      .default("block")
      .describe(
        "Under block mode only: whether raw shell commands may run in sessions (commands, background commands, notebook `!cmd` lines). They cannot be analysed, so `block` (default) refuses them; `allow` runs them unanalysed.",
      ),
    analysisCacheEntries: z
      .number()
      .int()
      .min(0)
      .default(1000)
      .describe(
        "Analysis results kept in memory, per user and by content digest and rule version, so repeated code is not analysed again; 0 turns the cache off.",
      ),
    analysisCacheMb: z
      .number()
      .int()
      .min(1)
      .default(16)
      .describe("Memory bound of the analysis cache (MiB), whatever its entry count."),
    warmAnalysers: z
      .number()
      .int()
      .min(0)
      .max(16)
      .default(2)
      .describe(
        "Python analysers kept started (each in its own sandbox with the analysis limits) so an analysis skips a cold start; 0 runs every analysis cold.",
      ),
  })
  .strict();

export const NotebookConfigSchema = z
  .object({
    maxBytes: z
      .number()
      .int()
      .min(1024)
      .default(20 * MiB)
      .describe("Largest notebook or .py upload (bytes)."),
    maxCells: z.number().int().min(1).default(2000).describe("Most cells in one notebook."),
    cellTimeout: z
      .number()
      .positive()
      .default(60)
      .describe("Default per-cell timeout (s); at most maxTimeout."),
    maxOutputBytes: z
      .number()
      .int()
      .min(1024)
      .default(64 * MiB)
      .describe(
        "All outputs of one notebook run together (bytes of text and data); past it the run stops, the remaining cells are not run.",
      ),
  })
  .strict();

export const ConfigSchema = z
  .object({
    dataDir: z.string().default("./.warden").describe("Where Warden keeps its state."),
    runDir: z
      .string()
      .default("/run/warden")
      .describe(
        "Runtime state of live sandboxes (mount points, uid leases); must be traversable by others.",
      ),
    logLevel: z
      .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
      .default("info")
      .describe("pino log level; logs go to stderr only. One-shot CLI commands default to warn."),
    defaultTimeout: z.number().positive().default(300).describe("Wall-clock timeout of a run (s)."),
    maxTimeout: z
      .number()
      .positive()
      .default(900)
      .describe("Largest timeout a request may ask (s)."),
    killGracePeriod: z
      .number()
      .min(0)
      .default(10)
      .describe("Time between SIGTERM and SIGKILL when a run is stopped (s)."),
    maxCpuPercent: z
      .number()
      .min(1)
      .max(100)
      .default(80)
      .describe("Largest CPU share a request may ask (percent of the whole host)."),
    maxMemoryMB: z
      .number()
      .int()
      .min(16)
      .default(2048)
      .describe("Largest memory limit a request may ask (MiB)."),
    maxDiskMB: z
      .number()
      .int()
      .min(1)
      .default(5120)
      .describe("Largest disk (tmpfs) a request may ask (MiB)."),
    maxPids: z
      .number()
      .int()
      .min(8)
      .default(1024)
      .describe("Largest process and thread count a request may ask."),
    maxOutputBytes: z
      .number()
      .int()
      .min(1024)
      .default(64 * MiB)
      .describe("Largest outputBytes a request may ask (bytes, per stream)."),
    maxCodeBytes: z
      .number()
      .int()
      .min(1024)
      .default(1024 * 1024)
      .describe("Largest `code` field (bytes)."),
    maxFiles: z.number().int().min(1).default(100).describe("Most files in one request."),
    maxFileBytes: z
      .number()
      .int()
      .min(1024)
      .default(4 * MiB)
      .describe("Largest single file (bytes, decoded)."),
    maxStdinBytes: z.number().int().min(0).default(MiB).describe("Largest stdin (bytes)."),
    maxConcurrentSandboxes: z
      .number()
      .int()
      .min(1)
      .default(50)
      .describe("Executions running at once, all users together; the rest wait in the queue."),
    maxSandboxesPerUser: z
      .number()
      .int()
      .min(1)
      .default(5)
      .describe("Executions one user may have running at once."),
    maxQueueSize: z
      .number()
      .int()
      .min(0)
      .default(500)
      .describe("Executions that may wait; more are refused (SANDBOX_BUSY)."),
    maxQueuedPerUser: z
      .number()
      .int()
      .min(0)
      .default(100)
      .describe("Executions one user may have waiting."),
    queueTimeout: z.number().positive().default(300).describe("Longest wait in the queue (s)."),
    memoryBudgetMB: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe("Sum of running memory limits allowed (MiB); 0 = 80% of the host's RAM."),
    memoryBudgetMode: z
      .enum(["reserve", "usage"])
      .default("reserve")
      .describe(
        "How a running execution counts against memoryBudgetMB: its whole memory limit (reserve: never overcommits), or memoryAdmissionMB at start and then its real use as the kernel measures it (usage: admits far more sleeping or small runs, but overcommits; each sandbox's own limit still holds). See docs/scale.md.",
      ),
    memoryAdmissionMB: z
      .number()
      .int()
      .min(1)
      .default(32)
      .describe(
        "usage mode: memory a new execution holds until the kernel's measure includes it (MiB).",
      ),
    memoryPollMs: z
      .number()
      .int()
      .min(100)
      .max(60_000)
      .default(1000)
      .describe(
        "usage mode: how often the sandboxes' memory use is read while executions run (ms); one file read each time.",
      ),
    retentionDays: z
      .number()
      .positive()
      .default(7)
      .describe("How long execution records and audit events are kept."),
    maxSessionsPerUser: z
      .number()
      .int()
      .min(0)
      .default(3)
      .describe("Live sessions one user may hold."),
    maxSessions: z
      .number()
      .int()
      .min(0)
      .default(100)
      .describe("Live sessions on this host, all users together."),
    sessionTimeout: z
      .number()
      .positive()
      .default(1800)
      .describe("Default session lifetime (TTL, s)."),
    maxSessionTimeout: z
      .number()
      .positive()
      .default(86_400)
      .describe("Longest session lifetime a request may ask (s)."),
    sessionIdleTimeout: z
      .number()
      .positive()
      .default(600)
      .describe("A session unused this long is destroyed (s)."),
    sessionPythonKernel: z
      .enum(["auto", "builtin"])
      .default("auto")
      .describe(
        "Python cells in sessions: `auto` runs them through IPython where the session's python can import it, else through Warden's built-in kernel; `builtin` always uses the built-in one.",
      ),
    maxArtifactSizeMB: z
      .number()
      .int()
      .min(1)
      .default(100)
      .describe("Largest artifact (one file) that leaves a sandbox (MiB)."),
    maxArtifactsPerExecution: z
      .number()
      .int()
      .min(0)
      .default(20)
      .describe("Artifacts kept per run (execution, command or cell); 0 = none."),
    maxArtifactsTotalMB: z
      .number()
      .int()
      .min(1)
      .default(200)
      .describe("All artifacts of one run together (MiB)."),
    artifactTypes: z
      .array(z.string().regex(/^[a-z]+\/[a-z0-9.+-]+$/))
      .default(DEFAULT_ARTIFACT_TYPES)
      .describe("MIME types an artifact may have, decided from its content (not its name)."),
    artifactRetentionHours: z
      .number()
      .positive()
      .default(24)
      .describe("Stored artifacts are removed after this many hours."),
    maxRetries: z
      .number()
      .int()
      .min(0)
      .default(3)
      .describe(
        "Retries of Warden's own transient failures (spawn, cgroup, mount); never of the program.",
      ),
    retryBackoffMs: z
      .number()
      .int()
      .min(0)
      .default(1000)
      .describe("First retry delay (ms); it doubles with each retry."),
    defaults: DefaultLimitsSchema.default(DefaultLimitsSchema.parse({})).describe(
      "Limits of a run that names none.",
    ),
    sandbox: SandboxHostConfigSchema.default(SandboxHostConfigSchema.parse({})),
    server: ServerConfigSchema.default(ServerConfigSchema.parse({})),
    network: NetworkConfigSchema.default(NetworkConfigSchema.parse({})),
    policy: PolicyConfigSchema.default(PolicyConfigSchema.parse({})),
    notebooks: NotebookConfigSchema.default(NotebookConfigSchema.parse({})),
    environments: EnvironmentsConfigSchema.default(EnvironmentsConfigSchema.parse({})).describe(
      "Prebuilt package environments (docs/environments.md).",
    ),
    sessions: SessionsConfigSchema.default(SessionsConfigSchema.parse({})),
    cluster: ClusterConfigSchema.default(ClusterConfigSchema.parse({})).describe(
      "Cluster mode: API and worker nodes on PostgreSQL and Redis (docs/cluster.md).",
    ),
    webhooks: WebhooksConfigSchema.default(WebhooksConfigSchema.parse({})).describe(
      "Batches and signed callbacks (docs/webhooks.md).",
    ),
    e2b: E2bConfigSchema.default(E2bConfigSchema.parse({})).describe(
      "E2B's SDKs against Warden: the adapter under /e2b (docs/e2b.md).",
    ),
    judge0: Judge0ConfigSchema.default(Judge0ConfigSchema.parse({})).describe(
      "Judge0 CE's API (docs/judge0.md).",
    ),
    judging: JudgingConfigSchema.default(JudgingConfigSchema.parse({})).describe(
      "Test-case runs: bounds of cases, suites and compiled workspaces (docs/judging.md).",
    ),
    runtimes: z
      .array(RuntimeDefinitionSchema)
      .default([])
      .describe("Extra runtimes, or replacements for built-in ones of the same name."),
    usage: UsageConfigSchema.default(UsageConfigSchema.parse({})).describe(
      "Usage accounting, prices and quotas (docs/usage.md).",
    ),
    dashboard: DashboardConfigSchema.default(DashboardConfigSchema.parse({})).describe(
      "The admin dashboard at /dashboard (docs/dashboard.md).",
    ),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.defaultTimeout > c.maxTimeout)
      ctx.addIssue({
        code: "custom",
        path: ["defaultTimeout"],
        message: "must not exceed maxTimeout",
      });
    if (c.defaults.memoryMb > c.maxMemoryMB)
      ctx.addIssue({
        code: "custom",
        path: ["defaults", "memoryMb"],
        message: "must not exceed maxMemoryMB",
      });
    if (c.defaults.diskMb > c.maxDiskMB)
      ctx.addIssue({
        code: "custom",
        path: ["defaults", "diskMb"],
        message: "must not exceed maxDiskMB",
      });
    if (c.defaults.cpuPercent > c.maxCpuPercent)
      ctx.addIssue({
        code: "custom",
        path: ["defaults", "cpuPercent"],
        message: "must not exceed maxCpuPercent",
      });
  });

export type Config = z.infer<typeof ConfigSchema>;
export type DefaultLimits = z.infer<typeof DefaultLimitsSchema>;
export type SandboxHostConfig = z.infer<typeof SandboxHostConfigSchema>;
export type ServerConfig = z.infer<typeof ServerConfigSchema>;
export type ConnectionLimits = z.infer<typeof ConnectionLimitsSchema>;
export type NetworkConfig = z.infer<typeof NetworkConfigSchema>;
export type PolicyConfig = z.infer<typeof PolicyConfigSchema>;
export type NotebookConfig = z.infer<typeof NotebookConfigSchema>;
