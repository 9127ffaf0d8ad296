/**
 * Building an environment: pip and npm run inside a Warden sandbox (the
 * installer, and every package's install hooks, are untrusted code), with the
 * build limits from config and network only through the egress proxy to the
 * index hosts the config names. The host then copies the sandbox's output
 * into the data dir without following anything the sandbox controls
 * (tree.ts), reads the package list, computes the digest, and renames the
 * finished environment into place. A failed build leaves nothing.
 */
import { readdir, rm, mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { EnvironmentsConfig } from "../config/environments.js";
import type { EnvironmentInfo } from "../contract/environment.js";
import { WardenError } from "../errors.js";
import { privateHostsOf, type EgressPolicy } from "../network/policy.js";
import { findTool } from "../runtimes/registry.js";
import type { Box } from "../sandbox/box.js";
import type { SandboxHost } from "../sandbox/host.js";
import type { OutputChunk, RunResult, SandboxFile, SandboxLimits } from "../sandbox/types.js";
import { NODE_DIR, PYTHON_DIR, SITE_DIR, SITECUSTOMIZE } from "./layout.js";
import { nodePackages, pythonPackages } from "./packages.js";
import { checkEnvironmentName, type EnvironmentStore } from "./store.js";
import { indexEnv } from "./indexes.js";
import { copyTree, realDirBeneath, treeDigest } from "./tree.js";

export interface BuildRequest {
  name: string;
  python?: { pip: string[]; requirements?: string | undefined; fromDir?: string | undefined };
  node?: { npm: string[] };
  onOutput?: ((chunk: OutputChunk) => void) | undefined;
}

export interface BuildContext {
  host: SandboxHost;
  store: EnvironmentStore;
  config: EnvironmentsConfig;
  network: { staticHosts: Record<string, string>; privateHosts: readonly string[] };
  searchPath: readonly string[];
}

/** A requirement pip reads as one: never an option (`--index-url=...` would be one). */
const PIP_SPEC = /^[A-Za-z0-9][A-Za-z0-9._[\],<>=!~ ]{0,199}$/;
/** name, name@version or @scope/name@range; no URLs, paths or git specs. */
const NPM_SPEC =
  /^(@[a-z0-9~][a-z0-9._~-]{0,100}\/)?[a-z0-9~][a-z0-9._~-]{0,213}(@[A-Za-z0-9.^~<>=* |+-]{1,100})?$/;
const MAX_SPECS = 200;
const MAX_REQUIREMENTS_BYTES = 1024 * 1024;
const OUT = "/workspace/out";
const WHEELS = "/.warden/wheels";

function checkSpecs(specs: string[], pattern: RegExp, field: string): string[] {
  if (specs.length > MAX_SPECS)
    throw new WardenError("INVALID_REQUEST", `${field}: at most ${MAX_SPECS} packages`);
  for (const spec of specs)
    if (!pattern.test(spec))
      throw new WardenError(
        "INVALID_REQUEST",
        `${field}: "${spec.slice(0, 80)}" is not a package name with an optional version`,
      );
  return specs;
}

/** The egress of a build: the index hosts, on their ports, nothing else. */
export function buildPolicy(ctx: Pick<BuildContext, "config" | "network">): EgressPolicy {
  const urls = [new URL(ctx.config.pythonIndexUrl), new URL(ctx.config.npmRegistry)];
  const ports = urls.map((u) => Number(u.port || (u.protocol === "https:" ? 443 : 80)));
  return {
    allow: [...new Set([...urls.map((u) => u.hostname), ...ctx.config.extraHosts])],
    ports: [...new Set(ports)],
    maxBytes: ctx.config.build.maxDownloadMb * 1024 * 1024,
    maxConnections: 1024,
    staticHosts: ctx.network.staticHosts,
    allowPrivateAddresses: false,
    privateHosts: privateHostsOf(ctx.network.privateHosts),
  };
}

function buildLimits(config: EnvironmentsConfig): SandboxLimits {
  const b = config.build;
  return {
    timeoutMs: b.timeoutSeconds * 1000,
    killGraceMs: 2000,
    memoryMb: b.memoryMb,
    cpuPercent: 100,
    diskMb: b.diskMb,
    pids: b.pids,
    outputBytes: 256 * 1024,
    openFiles: 4096,
  };
}

function failed(tool: string, r: RunResult): WardenError {
  const tail = `${r.stdout}\n${r.stderr}`.trim().split("\n").slice(-15).join("\n");
  const how =
    r.status === "failed"
      ? `exited ${r.exitCode ?? r.signal}`
      : r.status === "error"
        ? `could not run (${r.errorMessage ?? "unknown"})`
        : `ended ${r.status} (environments.build limits)`;
  return new WardenError("INVALID_REQUEST", `${tool} ${how}:\n${tail.slice(-4000)}`);
}

/** Builds `request.name` and puts it in the store; returns its manifest. */
export async function buildEnvironment(
  ctx: BuildContext,
  request: BuildRequest,
): Promise<EnvironmentInfo> {
  const name = checkEnvironmentName(request.name, "name");
  if (name === "default")
    throw new WardenError("INVALID_REQUEST", 'name: "default" is the built-in environment');
  if (!request.python && !request.node)
    throw new WardenError("INVALID_REQUEST", "give --python or --node (or both)");
  if (ctx.store.has(name))
    throw new WardenError("INVALID_REQUEST", `name: environment "${name}" already exists`);
  const files: SandboxFile[] = [];
  let fromDir: string | undefined;
  let pipArgs: string[] | undefined;
  if (request.python) {
    const py = request.python;
    const specs = checkSpecs(py.pip, PIP_SPEC, "--pip");
    pipArgs = [...specs];
    if (py.requirements !== undefined) {
      if (Buffer.byteLength(py.requirements) > MAX_REQUIREMENTS_BYTES)
        throw new WardenError(
          "INVALID_REQUEST",
          `--requirements: at most ${MAX_REQUIREMENTS_BYTES} bytes`,
        );
      files.push({ path: "requirements.txt", content: py.requirements });
      pipArgs.push("-r", "/workspace/requirements.txt");
    }
    if (py.fromDir !== undefined) {
      fromDir = resolve(py.fromDir);
      const entries = await readdir(fromDir).catch(() => {
        throw new WardenError("INVALID_REQUEST", `--from-dir: cannot read ${fromDir}`);
      });
      pipArgs.unshift("--no-index", "--find-links", WHEELS);
      // Nothing named: everything the directory offers.
      if (specs.length === 0 && py.requirements === undefined)
        pipArgs.push(
          ...entries
            .filter((e) => /^[A-Za-z0-9][A-Za-z0-9._+-]*\.(whl|tar\.gz|zip)$/.test(e))
            .map((e) => `${WHEELS}/${e}`),
        );
    }
    if (pipArgs.filter((a) => !a.startsWith("-") && a !== WHEELS).length === 0)
      throw new WardenError(
        "INVALID_REQUEST",
        "--python: name packages (--pip, --requirements or --from-dir)",
      );
  }
  const npmSpecs = request.node ? checkSpecs(request.node.npm, NPM_SPEC, "--npm") : [];
  if (request.node && npmSpecs.length === 0)
    throw new WardenError("INVALID_REQUEST", "--node: name packages with --npm");

  const limits = buildLimits(ctx.config);
  const policy = buildPolicy(ctx);
  const bounds = {
    maxBytes: ctx.config.build.maxSizeMb * 1024 * 1024,
    maxFiles: ctx.config.build.maxFiles,
  };
  const temp = await ctx.store.buildDir(name);
  let box: Box | undefined;
  try {
    // The admin's directory may be unreadable by a sandbox uid (a 0700 temp
    // dir): a root-owned copy with normal modes is bound instead, and goes
    // with the build.
    const wheels = join(temp, "wheels");
    if (fromDir) await copyTree(fromDir, wheels, bounds, "--from-dir");
    box = await ctx.host.prepare({
      diskMb: limits.diskMb,
      files,
      binds: fromDir ? [{ source: wheels, target: WHEELS }] : [],
    });
    const tree = join(temp, "tree");
    await mkdir(tree, { mode: 0o755 });
    const languages: ("python" | "node")[] = [];
    if (pipArgs) {
      await install(box, limits, policy, request.onOutput, "pip", pipCommand(ctx, pipArgs));
      languages.push("python");
    }
    if (request.node) {
      await install(box, limits, policy, request.onOutput, "npm", npmCommand(ctx, npmSpecs));
      languages.push("node");
    }
    const workspace = box.deadWorkspace;
    if (!workspace) throw new WardenError("INTERNAL", "the build's workspace is gone");
    if (pipArgs)
      await copyTree(
        await realDirBeneath(workspace, "out", PYTHON_DIR),
        join(tree, PYTHON_DIR),
        bounds,
        "the pip output",
      );
    if (request.node)
      await copyTree(
        await realDirBeneath(workspace, "out", NODE_DIR),
        join(tree, NODE_DIR),
        bounds,
        "the npm output",
      );
    // Bound into every sandbox that uses it (at /node_modules): never a link.
    if (request.node) await realDirBeneath(tree, NODE_DIR, "node_modules");
    await box.destroy();
    await rm(wheels, { recursive: true, force: true });
    if (pipArgs) {
      await mkdir(join(tree, SITE_DIR), { mode: 0o755 });
      await writeFile(join(tree, SITE_DIR, "sitecustomize.py"), SITECUSTOMIZE, { mode: 0o644 });
    }
    const summary = await treeDigest(tree, bounds);
    const info: EnvironmentInfo = {
      name,
      builtin: false,
      languages,
      packages: [
        ...(await pythonPackages(join(tree, PYTHON_DIR))),
        ...(await nodePackages(join(tree, NODE_DIR, "node_modules"))),
      ],
      sizeBytes: summary.sizeBytes,
      fileCount: summary.fileCount,
      digest: summary.digest,
      createdAt: new Date().toISOString(),
    };
    await ctx.store.install(temp, info);
    return info;
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  } finally {
    await box?.destroy();
  }
}

interface Command {
  argv: string[];
  env: Record<string, string>;
}

function pipCommand(ctx: BuildContext, args: string[]): Command {
  const python = findTool(["python3"], ctx.searchPath);
  if (!python) throw new WardenError("INVALID_REQUEST", "--python: no python3 on this host");
  return {
    argv: [
      python,
      "-m",
      "pip",
      "install",
      "--target",
      `${OUT}/${PYTHON_DIR}`,
      "--no-cache-dir",
      "--disable-pip-version-check",
      "--no-input",
      "--no-warn-script-location",
      "--progress-bar",
      "off",
      ...args,
    ],
    env: {
      ...indexEnv(ctx.config),
      PYTHONDONTWRITEBYTECODE: "1",
    },
  };
}

function npmCommand(ctx: BuildContext, specs: string[]): Command {
  const npm = findTool(["npm"], ctx.searchPath);
  if (!npm) throw new WardenError("INVALID_REQUEST", "--node: no npm on this host");
  const node = findTool(["node", "nodejs"], ctx.searchPath);
  return {
    argv: [
      ...(node && npm.endsWith(".js") ? [node] : []),
      npm,
      "install",
      "--prefix",
      `${OUT}/${NODE_DIR}`,
      "--no-audit",
      "--no-fund",
      "--no-update-notifier",
      "--registry",
      ctx.config.npmRegistry,
      "--",
      ...specs,
    ],
    env: { npm_config_cache: "/tmp/npm-cache", npm_config_loglevel: "warn" },
  };
}

async function install(
  box: Box,
  limits: SandboxLimits,
  policy: EgressPolicy,
  onOutput: BuildRequest["onOutput"],
  tool: string,
  command: Command,
): Promise<void> {
  const ran = await box.run({
    argv: command.argv,
    env: command.env,
    limits,
    network: { policy },
    onOutput,
  });
  if (ran.status !== "completed") throw failed(tool, ran);
}
